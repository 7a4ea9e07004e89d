"""The daemon fires daily_refresh on its own (cron set to every minute for the test)."""

from __future__ import annotations

import pytest

from jaffle_stack.stack import ScheduleTick, Stack

pytestmark = pytest.mark.stack


def test_daily_refresh_is_running_with_the_configured_cron(stack: Stack) -> None:
    schedule = stack.schedule("daily_refresh")
    assert schedule["cronSchedule"] == stack.env["JAFFLE_SCHEDULE_CRON"]


def test_daemon_launches_a_scheduled_run_that_succeeds(schedule_tick: ScheduleTick) -> None:
    assert schedule_tick.status_before == "RUNNING"
    assert schedule_tick.error is None, schedule_tick.error
    assert schedule_tick.run is not None
    assert schedule_tick.run["tagmap"]["dagster/schedule_name"] == "daily_refresh"
    assert schedule_tick.run["status"] == "SUCCESS"
    # Stopped by the fixture for the rest of the session: schedule_stopped and the persistence
    # test rely on it.
    assert schedule_tick.status_after_stop == "STOPPED"
