"""The dbt CLI resource on the jaffle shop project."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from packaging import version

from jaffle_platform import settings
from jaffle_platform.defs.dbt.project import jaffle_dbt_project
from jaffle_platform.resources import locked


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

    def cli(self, args, **kwargs):  # type: ignore[override]
        """Starts dbt on the warehouse file the loads and the chart use (settings.duckdb_path()).

        profiles.yml reads DUCKDB_PATH, and dagster-dbt hands dbt this process's environment, with
        no other way in. Left as it is, dbt would disagree with the loads and the chart whenever
        the variable is unset (dbt's default is a file in its project dir, settings' is under the
        cwd) or relative (dbt resolves it against its project dir): so dbt gets settings' path.
        Likewise JAFFLE_DUCKDB_MEMORY_LIMIT, checked and defaulted as the loads read it.
        """
        with _environ(
            DUCKDB_PATH=str(settings.duckdb_path()),
            JAFFLE_DUCKDB_MEMORY_LIMIT=settings.duckdb_memory_limit(),
        ):
            # dbt's process starts inside this call with a copy of the environment; ours is
            # restored as soon as it has started.
            return super().cli(args, **kwargs)


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# DbtCliResource.__init__ (inherited) takes a DbtProject; pyright sees only the field type.
dbt_cli = DbtCli(project_dir=jaffle_dbt_project(), dbt_executable=dbt_executable())  # type: ignore[arg-type]


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={"dbt": locked(dbt_cli, "The dbt CLI on the jaffle shop project.")}
    )
