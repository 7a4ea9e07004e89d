"""The code location: gathers the assets, resources, schedule and sensor defined under defs/."""

from __future__ import annotations

import dagster as dg

from jaffle_platform.defs.dbt.assets import jaffle_shop_dbt_assets
from jaffle_platform.defs.dbt.project import jaffle_dbt_project
from jaffle_platform.defs.ingest.assets import raw_assets
from jaffle_platform.defs.ingest.sensor import raw_files_sensor
from jaffle_platform.defs.reporting.chart import order_count_chart
from jaffle_platform.defs.schedules import build_daily_refresh_schedule, refresh_all_job
from jaffle_platform.resources import DbtCli, DuckDBWarehouse, dbt_executable


def locked(resource: dg.ConfigurableResource, description: str) -> dg.ResourceDefinition:
    """The resource as built here, with no config schema: a launch whose run config tries to
    change it (dbt's executable or flags, the project dir, the warehouse path) is refused."""
    # An empty config shape, not hardcoded_resource's permissive one: unknown keys are errors.
    return dg.ResourceDefinition(
        resource_fn=lambda _: resource, config_schema={}, description=description
    )


# DbtCliResource.__init__ (inherited) takes a DbtProject; pyright sees only the field type.
dbt_cli = DbtCli(project_dir=jaffle_dbt_project, dbt_executable=dbt_executable())  # type: ignore[arg-type]

defs = dg.Definitions(
    assets=[*raw_assets, jaffle_shop_dbt_assets, order_count_chart],
    jobs=[refresh_all_job],
    schedules=[build_daily_refresh_schedule()],
    sensors=[raw_files_sensor],
    resources={
        "warehouse": locked(DuckDBWarehouse(), "The DuckDB warehouse file (DUCKDB_PATH)."),
        "dbt": locked(dbt_cli, "The dbt CLI on the jaffle shop project."),
    },
    # One process runs every step: a step process per asset would re-import dbt each time
    # (about 5 s a step), which dominated the tutorial's run time.
    executor=dg.in_process_executor,
)
