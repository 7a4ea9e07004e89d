"""Shared fixtures: every test gets its own warehouse, reports dir and raw data dir."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from jaffle_platform import settings


@dataclass
class Workspace:
    root: Path
    raw_dir: Path
    duckdb_path: Path
    reports_dir: Path


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """Env vars pointing at a temp dir holding a copy of the committed sample data."""
    raw_dir = tmp_path / "raw"
    shutil.copytree(settings.SAMPLE_DATA_DIR, raw_dir)
    ws = Workspace(
        root=tmp_path,
        raw_dir=raw_dir,
        duckdb_path=tmp_path / "warehouse" / "warehouse.duckdb",
        reports_dir=tmp_path / "reports",
    )
    monkeypatch.setenv("RAW_DATA_URI", str(raw_dir))
    monkeypatch.setenv("DUCKDB_PATH", str(ws.duckdb_path))
    monkeypatch.setenv("REPORTS_DIR", str(ws.reports_dir))
    monkeypatch.setenv("SNAPSHOT_DIR", str(tmp_path / "snapshot"))
    monkeypatch.delenv("REPORTS_BASE_URL", raising=False)
    return ws
