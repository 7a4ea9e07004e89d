"""The daily schedule and the landing sensor, evaluated with Dagster's context builders."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from jaffle_platform import settings
from jaffle_platform.definitions import defs
from jaffle_platform.defs.ingest import sensor as landing
from jaffle_platform.defs.refresh.schedules import build_daily_refresh_schedule

RAW = ("raw_customers", "raw_orders", "raw_payments")


def test_daily_schedule_refreshes_everything_and_runs_by_default():
    schedule = defs.get_schedule_def("daily_refresh")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    with dg.build_schedule_context() as context:
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert len(requests) == 1
    assert requests[0].tags[dg.MAX_RUNTIME_SECONDS_TAG] == "3600"
    assert schedule.job_name == "refresh_all"
    job = defs.resolve_job_def("refresh_all")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} >= {
        "raw_orders",
        "customers",
        "order_count_chart",
    }


def test_schedule_cron_timezone_and_max_runtime_come_from_env(monkeypatch):
    monkeypatch.setenv("JAFFLE_SCHEDULE_CRON", "* * * * *")
    monkeypatch.setenv("JAFFLE_SCHEDULE_TIMEZONE", "Europe/Berlin")
    schedule = build_daily_refresh_schedule()
    assert schedule.cron_schedule == "* * * * *"
    assert schedule.execution_timezone == "Europe/Berlin"
    monkeypatch.setenv("JAFFLE_MAX_RUNTIME_SECONDS", "900")
    with dg.build_schedule_context() as context:
        (request,) = schedule.evaluate_tick(context).run_requests or []
    assert request.tags[dg.MAX_RUNTIME_SECONDS_TAG] == "900"


@pytest.fixture
def landing_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    monkeypatch.setenv("LANDING_DIR", str(path))
    monkeypatch.delenv("JAFFLE_LANDING_STABLE_SECONDS", raising=False)
    monkeypatch.delenv("JAFFLE_MAX_RUNTIME_SECONDS", raising=False)
    return path


class Clock:
    """Stands in for the sensor's wall clock, so the stability window needs no sleeping."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.now = 1_000_000.0
        monkeypatch.setattr(landing, "_now", lambda: self.now)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


class Ticks:
    """Successive evaluations of the real sensor, carrying the cursor as the daemon does."""

    def __init__(self) -> None:
        self.cursor: str | None = None
        self.instance = dg.DagsterInstance.ephemeral()

    def __call__(self) -> dg.SensorExecutionData:
        with dg.build_sensor_context(
            cursor=self.cursor, definitions=defs, instance=self.instance
        ) as context:
            result = defs.get_sensor_def("raw_files_sensor").evaluate_tick(context)
        self.cursor = result.cursor or self.cursor
        return result


@pytest.fixture
def tick() -> Ticks:
    return Ticks()


def drop(landing_dir: Path, *tables: str) -> None:
    for table in tables:
        shutil.copy(settings.SAMPLE_DATA_DIR / f"{table}.csv", landing_dir / f"{table}.csv")


def selected(request: dg.RunRequest) -> set[str]:
    return {k.to_user_string() for k in request.asset_selection or []}


def only_request(result: dg.SensorExecutionData) -> dg.RunRequest:
    requests = list(result.run_requests or [])
    assert len(requests) == 1, result.skip_message
    return requests[0]


def test_sensor_watches_landing_dir_every_10_seconds():
    sensor = defs.get_sensor_def("raw_files_sensor")
    assert sensor.minimum_interval_seconds == 10
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_files_present_before_the_first_tick_are_loaded_once_stable(landing_dir, clock, tick):
    drop(landing_dir, *RAW)

    first = tick()
    assert not first.run_requests, "not before the stability window"
    assert "waiting for raw_customers, raw_orders, raw_payments" in (first.skip_message or "")

    clock.now += 19
    assert not tick().run_requests

    clock.now += 1
    request = only_request(tick())
    assert set(RAW) | {"stg_orders", "customers", "order_count_chart"} <= selected(request)
    ops = request.run_config["ops"]
    for table in RAW:
        st = (landing_dir / f"{table}.csv").stat()
        assert ops[table]["config"] == {
            "from_landing": True,
            "expected_size": st.st_size,
            "expected_mtime_ns": st.st_mtime_ns,
        }
        assert request.tags[f"jaffle/landing_{table}"] == (
            f"size={st.st_size} mtime_ns={st.st_mtime_ns}"
        )
        assert f"{table}:{st.st_size}:{st.st_mtime_ns}" in (request.run_key or "")
    assert request.tags["trigger"] == "landing"
    assert request.tags[dg.MAX_RUNTIME_SECONDS_TAG] == "3600"

    clock.now += 60
    later = tick()
    assert not later.run_requests, "a file is loaded once"
    assert "no new or changed raw files" in (later.skip_message or "")


def test_a_file_still_growing_is_not_requested(landing_dir, clock, tick):
    orders = landing_dir / "raw_orders.csv"
    lines = (settings.SAMPLE_DATA_DIR / "raw_orders.csv").read_text().splitlines(keepends=True)
    orders.write_text("".join(lines[:10]))
    for end in (20, 30, 40):
        tick()
        clock.now += 15
        with orders.open("a") as out:
            out.write("".join(lines[end - 10 : end]))
        result = tick()
        assert not result.run_requests, "size changed between ticks"
        clock.now += 15
    clock.now += 20
    request = only_request(tick())
    assert request.run_config["ops"]["raw_orders"]["config"]["expected_size"] == (
        orders.stat().st_size
    )


def test_temporary_and_hidden_names_are_ignored(landing_dir, clock, tick):
    for name in ("raw_orders.csv.part", "raw_orders.csv.tmp", ".raw_orders.csv", "orders.csv"):
        shutil.copy(settings.SAMPLE_DATA_DIR / "raw_orders.csv", landing_dir / name)
    tick()
    clock.now += 100
    result = tick()
    assert not result.run_requests
    assert "no new or changed raw files" in (result.skip_message or "")

    # The documented protocol: the rename makes the file appear whole under its real name.
    (landing_dir / "raw_orders.csv.part").rename(landing_dir / "raw_orders.csv")
    tick()
    clock.now += 20
    assert selected(only_request(tick())) >= {"raw_orders"}


def test_a_symlink_is_not_followed(landing_dir, clock, tick):
    (landing_dir / "raw_orders.csv").symlink_to(settings.SAMPLE_DATA_DIR / "raw_orders.csv")
    tick()
    clock.now += 100
    assert not tick().run_requests


def test_a_changed_file_reruns_only_its_load_and_downstream(landing_dir, clock, tick):
    drop(landing_dir, *RAW)
    tick()
    clock.now += 20
    first = only_request(tick())

    orders = landing_dir / "raw_orders.csv"
    stamp = time.time() + 5
    os.utime(orders, (stamp, stamp))
    tick()
    clock.now += 20
    second = only_request(tick())
    assert second.run_key != first.run_key
    assert {"raw_orders", "stg_orders", "orders", "customers", "order_count_chart"} <= selected(
        second
    )
    assert not selected(second) & {"raw_customers", "raw_payments", "stg_payments"}
    assert set(second.run_config["ops"]) == {"raw_orders"}


def test_stability_window_comes_from_env_in_real_time(landing_dir, tick, monkeypatch):
    monkeypatch.setenv("JAFFLE_LANDING_STABLE_SECONDS", "0.5")
    drop(landing_dir, "raw_customers")
    assert not tick().run_requests
    time.sleep(0.6)
    assert selected(only_request(tick())) >= {"raw_customers"}


def test_sensor_run_carries_the_max_runtime_from_env(landing_dir, clock, tick, monkeypatch):
    monkeypatch.setenv("JAFFLE_MAX_RUNTIME_SECONDS", "120")
    drop(landing_dir, "raw_payments")
    tick()
    clock.now += 20
    assert only_request(tick()).tags[dg.MAX_RUNTIME_SECONDS_TAG] == "120"


def test_sensor_skips_without_a_landing_folder(tmp_path, monkeypatch, tick):
    monkeypatch.setenv("LANDING_DIR", str(tmp_path / "absent"))
    result = tick()
    assert not result.run_requests
    assert "does not exist" in (result.skip_message or "")


def test_a_cursor_from_the_old_sensor_starts_over(landing_dir, clock, tick):
    drop(landing_dir, "raw_orders")
    tick.cursor = json.dumps({"raw_orders": [1, 2]})
    tick()
    clock.now += 20
    assert selected(only_request(tick())) >= {"raw_orders"}


def test_settle_only_passes_a_signature_seen_unchanged_for_the_window():
    sig = landing.Signature(10, 1)
    state, ready = landing.settle(landing.LandingState(), {"raw_orders": sig}, 0, 20)
    assert not ready
    state, ready = landing.settle(state, {"raw_orders": landing.Signature(11, 2)}, 19, 20)
    assert not ready, "changed: the window starts again"
    state, ready = landing.settle(state, {"raw_orders": landing.Signature(11, 2)}, 38, 20)
    assert not ready
    state, ready = landing.settle(state, {"raw_orders": landing.Signature(11, 2)}, 39, 20)
    assert ready == {"raw_orders": landing.Signature(11, 2)}
    assert landing.LandingState.from_json(state.to_json()) == state
    state, ready = landing.settle(state, {}, 40, 20)
    assert not ready and not state.settling and state.requested
