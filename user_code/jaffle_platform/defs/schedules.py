"""The daily refresh of the whole graph."""

from __future__ import annotations

import dagster as dg

from jaffle_platform import settings

refresh_all_job = dg.define_asset_job(
    "refresh_all",
    selection=dg.AssetSelection.all(),
    description="Load the raw files, build the dbt models, draw the chart.",
)


def build_daily_refresh_schedule() -> dg.ScheduleDefinition:
    """Cron and timezone come from JAFFLE_SCHEDULE_CRON / JAFFLE_SCHEDULE_TIMEZONE."""
    return dg.ScheduleDefinition(
        name="daily_refresh",
        job=refresh_all_job,
        cron_schedule=settings.schedule_cron(),
        execution_timezone=settings.schedule_timezone(),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Refreshes every asset, from the raw files to the chart.",
    )
