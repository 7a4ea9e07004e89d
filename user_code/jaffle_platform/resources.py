"""The DuckDB warehouse: one writer at a time, readers read-only; and how resources are locked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from jaffle_platform import settings

# Every asset that opens the warehouse file claims this pool; dagster.yaml gives it one slot,
# because DuckDB lets one process at a time open a file for writing (and locks readers out too).
DUCKDB_POOL = "duckdb"


class DuckDBWarehouse(dg.ConfigurableResource):
    """The warehouse file, DUCKDB_PATH (read at run time)."""

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = settings.duckdb_path()
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(
            str(path),
            read_only=read_only,
            config={"memory_limit": settings.duckdb_memory_limit()},
        )
        try:
            yield con
        finally:
            con.close()


def locked(resource: dg.ConfigurableResource, description: str) -> dg.ResourceDefinition:
    """The resource as built here, with no config schema: a launch whose run config tries to
    change it (dbt's executable or flags, the project dir, the warehouse path) is refused."""
    # An empty config shape, not hardcoded_resource's permissive one: unknown keys are errors.
    return dg.ResourceDefinition(
        resource_fn=lambda _: resource, config_schema={}, description=description
    )
