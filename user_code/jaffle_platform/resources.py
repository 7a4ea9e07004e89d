"""DuckDB access: one writer at a time, readers read-only."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource
from packaging import version

from jaffle_platform import settings

# Every asset that opens the warehouse file claims this pool; dagster.yaml gives it one slot,
# because DuckDB lets one process at a time open a file for writing (and locks readers out too).
DUCKDB_POOL = "duckdb"


class DuckDBWarehouse(dg.ConfigurableResource):
    """The warehouse file. `path` empty means DUCKDB_PATH (read at run time)."""

    path: str = ""

    def resolved_path(self) -> Path:
        return Path(self.path).resolve() if self.path else settings.duckdb_path()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = self.resolved_path()
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path), read_only=read_only)
        try:
            yield con
        finally:
            con.close()


def dbt_executable() -> str:
    """The dbt installed beside this interpreter, so a venv works without being activated."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


class DbtCli(DbtCliResource):
    """dagster-dbt's dbt CLI resource, minus two start-up costs paid in every run process.

    Before every dbt command dagster-dbt parses all of dbt's macros in the run's own process
    (about 3 s) to build an adapter that only `fetch_row_counts` / `fetch_column_metadata` use.
    Those would open the DuckDB file while the dbt subprocess holds its lock, so this project
    reads row counts and schemas itself once dbt has exited, and skips that start-up cost.
    """

    def _initialize_dbt_core_adapter(self, args):  # type: ignore[override]
        return None

    @cached_property
    def _cli_version(self) -> version.Version:
        """dbt-core's version from package metadata, when dbt is the one beside this interpreter.

        dagster-dbt runs `dbt --version` in every run process to learn it: 2.4 s of start-up.
        """
        if Path(self.dbt_executable) == Path(sys.executable).parent / "dbt":
            return version.parse(importlib.metadata.version("dbt-core"))
        return super()._cli_version
