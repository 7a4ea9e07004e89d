"""The daily refresh of the whole graph, and the run time limit every automated run carries."""

from __future__ import annotations

import dagster as dg

from jaffle_platform import settings

refresh_all_job = dg.define_asset_job(
    "refresh_all",
    selection=dg.AssetSelection.all(),
    description="Load the raw files, build the dbt models, draw the chart.",
)


def max_runtime_tags() -> dict[str, str]:
    """Run monitoring (in the daemon) stops a run carrying this tag after that many seconds."""
    return {dg.MAX_RUNTIME_SECONDS_TAG: str(settings.max_runtime_seconds())}


def platform_schedule(
    name: str, job: dg.JobDefinition | dg.UnresolvedAssetJobDefinition, cron: str, description: str
) -> dg.ScheduleDefinition:
    """A schedule of the platform: running by default, in JAFFLE_SCHEDULE_TIMEZONE, each run
    with the max-runtime tag."""
    return dg.ScheduleDefinition(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone=settings.schedule_timezone(),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
        # Read at each tick, so JAFFLE_MAX_RUNTIME_SECONDS changes without a code reload.
        tags_fn=lambda _context: max_runtime_tags(),
    )


def build_daily_refresh_schedule() -> dg.ScheduleDefinition:
    """Cron and timezone come from JAFFLE_SCHEDULE_CRON / JAFFLE_SCHEDULE_TIMEZONE."""
    return platform_schedule(
        "daily_refresh",
        refresh_all_job,
        settings.schedule_cron(),
        "Refreshes every asset, from the raw files to the chart.",
    )


@dg.definitions
def refresh() -> dg.Definitions:
    """The job and its schedule, built when the code location loads (the cron is read then)."""
    return dg.Definitions(jobs=[refresh_all_job], schedules=[build_daily_refresh_schedule()])
