"""The weekly full tests: every dbt test on every row, where daily runs test their own days."""

from __future__ import annotations

import dagster as dg

from jaffle_platform import settings
from jaffle_platform.defs.dbt.assets import jaffle_shop_dbt_assets
from jaffle_platform.defs.refresh.schedules import platform_schedule

# Checks only: the run builds no model. It has no partition, so the tests have no window.
dbt_full_tests_job = dg.define_asset_job(
    "dbt_full_tests",
    selection=dg.AssetSelection.checks(jaffle_shop_dbt_assets),
    description="Every dbt data test on every row of the models (daily runs test their days).",
)


@dg.definitions
def full_tests() -> dg.Definitions:
    """The job and its weekly schedule, built when the code location loads (cron read then)."""
    schedule = platform_schedule(
        "weekly_dbt_full_tests",
        dbt_full_tests_job,
        settings.full_tests_cron(),
        "Runs every dbt test on all rows, once a week.",
    )
    return dg.Definitions(jobs=[dbt_full_tests_job], schedules=[schedule])
