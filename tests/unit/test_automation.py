"""The daily schedule and the landing sensor, evaluated with Dagster's context builders."""

from __future__ import annotations

import os
import time

import dagster as dg

from jaffle_platform.definitions import defs
from jaffle_platform.defs.schedules import build_daily_refresh_schedule


def test_daily_schedule_refreshes_everything_and_runs_by_default():
    schedule = defs.get_schedule_def("daily_refresh")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    with dg.build_schedule_context() as context:
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert len(requests) == 1
    assert schedule.job_name == "refresh_all"
    job = defs.resolve_job_def("refresh_all")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} >= {
        "raw_orders",
        "customers",
        "order_count_chart",
    }


def test_schedule_cron_and_timezone_come_from_env(monkeypatch):
    monkeypatch.setenv("JAFFLE_SCHEDULE_CRON", "* * * * *")
    monkeypatch.setenv("JAFFLE_SCHEDULE_TIMEZONE", "Europe/Berlin")
    schedule = build_daily_refresh_schedule()
    assert schedule.cron_schedule == "* * * * *"
    assert schedule.execution_timezone == "Europe/Berlin"


def evaluate(sensor: dg.SensorDefinition, cursor: str | None):
    with dg.build_sensor_context(
        cursor=cursor, definitions=defs, instance=dg.DagsterInstance.ephemeral()
    ) as context:
        result = sensor.evaluate_tick(context)
    return result


def test_sensor_launches_changed_file_and_everything_downstream(workspace):
    sensor = defs.get_sensor_def("raw_files_sensor")

    first = evaluate(sensor, None)
    assert not first.run_requests, "files present at start are the baseline"
    assert first.cursor

    second = evaluate(sensor, first.cursor)
    assert not second.run_requests

    orders = workspace.raw_dir / "raw_orders.csv"
    stamp = time.time() + 5
    os.utime(orders, (stamp, stamp))
    third = evaluate(sensor, second.cursor)
    requests = list(third.run_requests or [])
    assert len(requests) == 1
    selected = {k.to_user_string() for k in requests[0].asset_selection or []}
    assert {"raw_orders", "stg_orders", "orders", "customers", "order_count_chart"} <= selected
    assert not selected & {"raw_customers", "raw_payments", "stg_payments"}

    fourth = evaluate(sensor, third.cursor)
    assert not fourth.run_requests


def test_sensor_skips_when_raw_data_is_remote(monkeypatch):
    monkeypatch.setenv("RAW_DATA_URI", "https://example.invalid/jaffle")
    result = evaluate(defs.get_sensor_def("raw_files_sensor"), None)
    assert not result.run_requests
    assert "URL" in (result.skip_message or "")
