"""What a finished run is worth telling: its failure, its failed blocking checks, a recovery."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from dagster._core.event_api import RunStatusChangeRecordsFilter
from dagster._core.events import DagsterEventType

from jaffle_platform.defs.alerts import messages
from jaffle_platform.defs.alerts.delivery import Alert

# Set on a failed run once a "recovered" message has named it, so a second success (a retry and
# a manual re-execution, say) does not announce the same recovery twice. Shown in the UI.
RECOVERED_BY_TAG = "jaffle/recovered_by"
PARENT_RUN_ID_TAG = "dagster/parent_run_id"
# Run status changes read per tick: the run failures and successes after the cursor.
WATCHED = (DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_SUCCESS)
FINISHED = [
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
]
# How far back a success looks for the same job's previous run.
PREVIOUS_RUNS_SEARCHED = 25


def latest_event_id(instance: dg.DagsterInstance) -> int:
    """Storage id of the newest run failure or success: where a new cursor starts."""
    ids = [-1]
    for event_type in WATCHED:
        records = instance.fetch_run_status_changes(event_type, limit=1).records
        ids.extend(r.storage_id for r in records)
    return max(ids)


def events_after(instance: dg.DagsterInstance, after: int, limit: int) -> list[dg.EventLogRecord]:
    """The next `limit` run failures and successes after storage id `after`, oldest first, so
    a failure is always announced before the success that recovers it."""
    records: list[dg.EventLogRecord] = []
    for event_type in WATCHED:
        records.extend(
            instance.fetch_run_status_changes(
                RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=after),
                limit=limit,
                ascending=True,
            ).records
        )
    return sorted(records, key=lambda r: r.storage_id)[:limit]


def _step_failures(instance: dg.DagsterInstance, run_id: str) -> list[dg.DagsterEvent]:
    records = instance.get_records_for_run(
        run_id=run_id, of_type=DagsterEventType.STEP_FAILURE, limit=5
    ).records
    return [r.event_log_entry.dagster_event for r in records if r.event_log_entry.dagster_event]


def failed_blocking_checks(
    instance: dg.DagsterInstance, run_id: str
) -> list[dg.AssetCheckEvaluation]:
    """Blocking checks that failed in the run (dbt tests of severity error are blocking)."""
    records = instance.get_records_for_run(
        run_id=run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    found = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        evaluation = event.asset_check_evaluation_data
        if not evaluation.passed and evaluation.blocking:
            found.append(evaluation)
    return found


def _same_work(a: dg.DagsterRun, b: dg.DagsterRun) -> bool:
    return (
        a.job_name == b.job_name
        and a.asset_selection == b.asset_selection
        and a.op_selection == b.op_selection
    )


def failed_predecessor(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRun | None:
    """The failed run this successful run makes good, not yet announced as recovered.

    A retry or re-execution recovers its parent if the parent failed. Any other run recovers the
    previous finished run of the same job (same assets) if that one failed.
    """
    parent_id = run.tags.get(PARENT_RUN_ID_TAG)
    if parent_id:
        parent = instance.get_run_by_id(parent_id)
        failed = parent if parent and parent.status == dg.DagsterRunStatus.FAILURE else None
    else:
        failed = None
        record = instance.get_run_record_by_id(run.run_id)
        before = record.create_timestamp if record else None
        for previous in instance.get_runs(
            filters=dg.RunsFilter(job_name=run.job_name, statuses=FINISHED, created_before=before),
            limit=PREVIOUS_RUNS_SEARCHED,
        ):
            if previous.run_id != run.run_id and _same_work(previous, run):
                failed = previous if previous.status == dg.DagsterRunStatus.FAILURE else None
                break
    if failed is None or RECOVERED_BY_TAG in failed.tags:
        return None
    return failed


def alerts_for(
    instance: dg.DagsterInstance, record: dg.EventLogRecord
) -> tuple[dg.DagsterRun | None, Sequence[Alert]]:
    """The run a status change belongs to and the messages it calls for (possibly none).

    A recovery is marked on the failed run (RECOVERED_BY_TAG) here, before it is sent: a message
    is sent at most once, like Dagster's own run status sensors.
    """
    entry = record.event_log_entry
    event = entry.dagster_event
    run = instance.get_run_by_id(entry.run_id)
    if run is None or event is None:  # deleted since, by the retention job for instance
        return run, []
    alerts: list[Alert] = []
    if event.event_type == DagsterEventType.RUN_FAILURE:
        error = messages.first_error(event, _step_failures(instance, run.run_id))
        alerts.append(messages.run_failed(run, error))
    elif event.event_type == DagsterEventType.RUN_SUCCESS:
        failed = failed_predecessor(instance, run)
        if failed is not None:
            instance.add_run_tags(failed.run_id, {RECOVERED_BY_TAG: run.run_id})
            alerts.append(messages.run_recovered(run, failed))
    for evaluation in failed_blocking_checks(instance, run.run_id):
        alerts.append(messages.check_failed(run, evaluation))
    return run, alerts
