"""Faults a self-hosted stack meets: a killed run, a Postgres restart, the code server down,
concurrent runs on the one DuckDB file."""

from __future__ import annotations

import time

import pytest

from jaffle_stack.alert_hook import AlertHook
from jaffle_stack.compose import docker
from jaffle_stack.graphql import last_sample_day
from jaffle_stack.stack import ObservedRun, Stack, observe_run
from jaffle_stack.wait import poll

# The schedule is stopped so that no scheduled run meets a restart or an outage; a test that fails
# half-way leaves the stack healthy all the same.
pytestmark = [
    pytest.mark.stack,
    pytest.mark.usefixtures("schedule_stopped", "stack_healthy_after"),
]


def test_killed_run_is_marked_failed_retried_and_alerted_once(
    stack: Stack, materialized: ObservedRun, hook: AlertHook
) -> None:
    stack.wait_idle()
    run_id = stack.launch_all_assets(days=last_sample_day())

    def started_container() -> list[str] | None:
        if stack.run(run_id)["status"] != "STARTED":
            return None
        return docker("ps", "-q", "--filter", f"label=dagster/run_id={run_id}").split() or None

    (container,) = poll("the run STARTED in its container", started_container, 180, 0.5)
    docker("kill", container)

    killed = stack.wait_run(run_id, 180)  # run monitoring polls every 30 s
    assert killed["status"] == "FAILURE"
    retries = poll(
        "the automatic retry", lambda: stack.runs(tags={"dagster/parent_run_id": run_id}), 120
    )
    assert len(retries) == 1
    retry = stack.wait_run(retries[0]["runId"], 300)  # the killed run's slot frees after 60 s
    assert retry["tagmap"].get("dagster/retry_number") == "1"
    assert retry["status"] == "SUCCESS"

    # One alert names the killed run, one says its retry recovered it (run_alerts ticks every
    # 30 s); nothing more about either run.
    def about(run: str) -> list[dict]:
        return [m for m in hook.messages() if run in m.get("message", "")]

    def both() -> tuple[list[dict], list[dict]] | None:
        failed, recovered = about(run_id), about(retry["runId"])
        return (failed, recovered) if failed and recovered else None

    poll("the failure and the recovery alerts", both, 120)
    time.sleep(35)  # one more sensor tick: a duplicate would show now
    titles = [m["title"] for m in about(run_id)]
    assert [t.split(":")[0] for t in titles] == ["Run failed", "Recovered"], titles
    assert [m["title"].split(":")[0] for m in about(retry["runId"])] == ["Recovered"]


def test_webserver_and_daemon_recover_from_a_postgres_restart(stack: Stack) -> None:
    stack.wait_idle()
    stack.compose("restart", "postgres")
    poll("the GraphQL API to answer", stack.location_entry, 120)
    stack.wait_healthy()
    observed = observe_run(stack, stack.launch_all_assets(days=last_sample_day()))
    assert observed.run["status"] == "SUCCESS"


def test_code_server_down_is_reported_then_reloads_by_itself(stack: Stack) -> None:
    stack.wait_idle()
    stack.compose("stop", "user_code")
    try:
        error = poll(
            "the location reported unreachable",
            lambda: (
                (e := stack.location_entry()["locationOrLoadError"])["__typename"] == "PythonError"
                and e
            ),
            90,
        )
        assert "UserCodeUnreachable" in error["message"] or "UNAVAILABLE" in error["message"]
    finally:
        stack.compose("start", "user_code")
    # No reloadRepositoryLocation: the webserver notices the server is back and reloads.
    loaded = poll(
        "the location loaded again",
        lambda: (
            (e := stack.location_entry())["locationOrLoadError"]["__typename"]
            == "RepositoryLocation"
            and e
        ),
        120,
    )
    assert loaded["loadStatus"] == "LOADED"
    stack.wait_healthy()


def test_three_concurrent_runs_all_succeed_one_after_another(
    stack: Stack, sample_mart_rows: dict[str, int]
) -> None:
    stack.wait_idle()
    # Three runs of a day (the sensor's kind of run): the point is how they queue, not the range.
    run_ids = [stack.launch_all_assets(days=last_sample_day()) for _ in range(3)]
    runs = [stack.wait_run(run_id, 480) for run_id in run_ids]
    assert [r["status"] for r in runs] == ["SUCCESS"] * 3
    # The `duckdb` pool at run granularity: a run starts only once the previous one has ended,
    # so no two refreshes interleave their steps on the warehouse.
    spans = sorted((r["startTime"], r["endTime"]) for r in runs)
    for (_, earlier_end), (later_start, _) in zip(spans, spans[1:], strict=False):
        assert later_start >= earlier_end, f"runs overlapped: {spans}"
    stack.wait_idle()
    counts = stack.warehouse_counts(["customers", "orders"])
    assert counts == sample_mart_rows
