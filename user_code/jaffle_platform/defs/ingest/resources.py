"""The warehouse resource the raw loads, dbt and the chart share."""

from __future__ import annotations

import dagster as dg

from jaffle_platform.resources import DuckDBWarehouse, locked


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "warehouse": locked(DuckDBWarehouse(), "The DuckDB warehouse file (DUCKDB_PATH)."),
        }
    )
