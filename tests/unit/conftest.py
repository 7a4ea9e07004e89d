"""Fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a fresh warehouse file, closed after the test."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    yield con
    con.close()
