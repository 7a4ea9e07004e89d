"""`compose down` (volumes kept) then `up`: run history, schedule state and tables survive."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaffle_stack.stack import ObservedRun, ScheduleTick, Stack

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("stack_healthy_after")]


def test_down_and_up_keeps_runs_schedule_state_and_warehouse(
    stack: Stack, materialized: ObservedRun, schedule_tick: ScheduleTick, artifacts: Path
) -> None:
    stack.wait_idle()
    runs_before = {r["runId"]: r["status"] for r in stack.runs()}
    assert materialized.run_id in runs_before
    schedule_before = stack.schedule("daily_refresh")["scheduleState"]["status"]
    # Stopped by the schedule_tick fixture: the code's default is RUNNING, so only storage can
    # keep it.
    assert schedule_before == "STOPPED"
    tables_before = stack.warehouse_counts(["customers", "orders"])

    stack.save_logs(artifacts, "-before-down")  # `down` deletes the containers and their logs
    stack.compose("down")
    assert stack.health() == dict.fromkeys(stack.services(), "missing")
    stack.compose("up", "-d", "--no-build")
    stack.wait_healthy()
    stack.location_entry()  # the GraphQL API answers

    runs_after = {r["runId"]: r["status"] for r in stack.runs()}
    assert runs_after == runs_before
    assert stack.schedule("daily_refresh")["scheduleState"]["status"] == schedule_before
    assert stack.warehouse_counts(["customers", "orders"]) == tables_before
