"""The retention job: finished runs older than JAFFLE_RETENTION_DAYS go, with all they left."""

import datetime as dt
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

from jaffle_platform import settings
from jaffle_platform.defs.refresh.schedules import platform_schedule

# Only these: a queued, starting, started or canceling run is never deleted, however old.
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
# Runs deleted per query: 10,000 old runs are read 500 ids at a time, never in one result.
BATCH_SIZE = 500
RETENTION_CRON = "0 3 * * *"


@dataclass(frozen=True)
class RetentionResult:
    cutoff: dt.datetime
    deleted: int
    kept_unfinished: int
    kept_recent: int


def delete_run_and_logs(instance: dg.DagsterInstance, run_id: str) -> None:
    """The run, its event log, its compute logs (stdout/stderr) and its stored op outputs."""
    # Files first: a run row left behind is found again by the next retention run; a file whose
    # run is gone would stay forever.
    instance.compute_log_manager.delete_logs(prefix=[run_id])
    outputs = Path(instance.storage_directory()) / run_id
    if outputs.is_dir():
        shutil.rmtree(outputs)
    instance.delete_run(run_id)


def delete_check_executions(instance: dg.DagsterInstance, run_ids: Sequence[str]) -> None:
    """The asset check results (one row per dbt test per run) that these runs recorded.

    Dagster's delete_run leaves them (1.13): with 26 dbt tests, 26 rows a run would stay forever.
    Private tables, so tests/integration/test_maintenance.py checks this on every upgrade.
    """
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        return
    if not storage.has_table(AssetCheckExecutionsTable.name):
        return
    with storage.index_connection() as conn:
        conn.execute(
            AssetCheckExecutionsTable.delete().where(
                AssetCheckExecutionsTable.c.run_id.in_(run_ids)
            )
        )


def delete_old_runs(
    instance: dg.DagsterInstance,
    cutoff: dt.datetime,
    batch_size: int = BATCH_SIZE,
    log: Callable[[str], None] = lambda _message: None,
) -> RetentionResult:
    """Deletes every finished run created before cutoff, batch_size runs per query."""
    old_finished = dg.RunsFilter(created_before=cutoff, statuses=FINISHED)
    deleted: set[str] = set()
    while run_ids := instance.get_run_ids(old_finished, limit=batch_size):
        again = deleted.intersection(run_ids)
        if again:
            raise RuntimeError(f"run {sorted(again)[0]} is still in storage after its deletion")
        # Check results first: once a run is gone, nothing would find its results again.
        delete_check_executions(instance, run_ids)
        for run_id in run_ids:
            delete_run_and_logs(instance, run_id)
        deleted.update(run_ids)
        log(f"deleted {len(deleted)} runs so far")
    not_finished = [s for s in dg.DagsterRunStatus if s not in FINISHED]
    return RetentionResult(
        cutoff=cutoff,
        deleted=len(deleted),
        kept_unfinished=instance.get_runs_count(
            dg.RunsFilter(created_before=cutoff, statuses=not_finished)
        ),
        kept_recent=instance.get_runs_count(dg.RunsFilter(created_after=cutoff)),
    )


@dg.op(name="delete_old_runs", out=dg.Out(dg.Nothing))
def delete_old_runs_op(context: dg.OpExecutionContext):
    """Deletes finished runs older than JAFFLE_RETENTION_DAYS, with their logs and check results."""
    # From the environment only, never from run config: launching runs must not let an
    # operator delete history, which only an admin may do.
    try:
        days = settings.retention_days()
    except ValueError as e:
        raise dg.Failure(description=f"Retention refused: {e}", allow_retries=False) from None
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    context.log.info(f"deleting finished runs created before {cutoff:%Y-%m-%d %H:%M} UTC")
    result = delete_old_runs(context.instance, cutoff, log=context.log.info)
    context.log.info(
        f"deleted {result.deleted} runs older than {days} days with their event logs, "
        f"compute logs and check results; kept {result.kept_unfinished} older runs that have "
        f"not finished and {result.kept_recent} runs from the last {days} days"
    )
    return dg.Output(
        None,
        metadata={
            "deleted": result.deleted,
            "kept_unfinished": result.kept_unfinished,
            "kept_recent": result.kept_recent,
            "cutoff": cutoff.isoformat(timespec="seconds"),
            "retention_days": days,
        },
    )


@dg.job(
    name="retention",
    description="Deletes finished runs older than JAFFLE_RETENTION_DAYS (default 30), with their "
    "event logs, compute logs and asset check results.",
)
def retention_job():
    delete_old_runs_op()


def build_retention_schedule() -> dg.ScheduleDefinition:
    return platform_schedule(
        "daily_retention",
        retention_job,
        RETENTION_CRON,
        "Deletes old runs every day at 03:00.",
    )


@dg.definitions
def retention() -> dg.Definitions:
    return dg.Definitions(jobs=[retention_job], schedules=[build_retention_schedule()])
