"""The daily refresh of the whole graph, and the run time limit every automated run carries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import dagster as dg

from jaffle_platform import settings
from jaffle_platform.partitions import daily_partitions

refresh_all_job = dg.define_asset_job(
    "refresh_all",
    selection=dg.AssetSelection.all(),
    partitions_def=daily_partitions(),
    description=(
        "Load the raw files of the run's days, build the dbt models, draw the chart. One "
        "partition: one day; a range of days runs as one run."
    ),
)


def max_runtime_tags() -> dict[str, str]:
    """Run monitoring (in the daemon) stops a run carrying this tag after that many seconds."""
    return {dg.MAX_RUNTIME_SECONDS_TAG: str(settings.max_runtime_seconds())}


def platform_schedule(
    name: str,
    job: dg.JobDefinition | dg.UnresolvedAssetJobDefinition,
    cron: str,
    description: str,
    partition_key_fn: Callable[[dg.ScheduleEvaluationContext], str | None] | None = None,
) -> dg.ScheduleDefinition:
    """A schedule of the platform: running by default, in JAFFLE_SCHEDULE_TIMEZONE, each run
    with the max-runtime tag. A partitioned job's schedule passes `partition_key_fn`: the key
    each tick runs (None skips the tick)."""
    if partition_key_fn is not None:
        key_fn = partition_key_fn

        def run_partition(context: dg.ScheduleEvaluationContext):
            key = key_fn(context)
            if key is None:
                return dg.SkipReason("no partition to run yet (JAFFLE_PARTITIONS_START)")
            # run_key: a tick retried by the daemon does not run the same day twice.
            return dg.RunRequest(run_key=key, partition_key=key, tags=max_runtime_tags())

        return dg.ScheduleDefinition(
            name=name,
            job=job,
            cron_schedule=cron,
            execution_timezone=settings.schedule_timezone(),
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=description,
            execution_fn=run_partition,
        )
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


def latest_complete_day(context: dg.ScheduleEvaluationContext) -> str | None:
    """The day before the tick's, in JAFFLE_SCHEDULE_TIMEZONE: the latest day whose files are
    complete when the tick fires (today's partition is still being written); None before
    JAFFLE_PARTITIONS_START."""
    tick = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    day = tick.astimezone(ZoneInfo(settings.schedule_timezone())).date() - dt.timedelta(days=1)
    return day.isoformat() if day >= settings.partitions_start() else None


def build_daily_refresh_schedule() -> dg.ScheduleDefinition:
    """Cron and timezone come from JAFFLE_SCHEDULE_CRON / JAFFLE_SCHEDULE_TIMEZONE."""
    return platform_schedule(
        "daily_refresh",
        refresh_all_job,
        settings.schedule_cron(),
        "Refreshes the day before the tick: loads that day's files, builds the dbt models on "
        "it and redraws the chart.",
        partition_key_fn=latest_complete_day,
    )


@dg.definitions
def refresh() -> dg.Definitions:
    """The job and its schedule, built when the code location loads (the cron is read then)."""
    return dg.Definitions(jobs=[refresh_all_job], schedules=[build_daily_refresh_schedule()])
