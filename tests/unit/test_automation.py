"""The daily schedule and the landing sensor, evaluated with Dagster's context builders."""

from __future__ import annotations

import datetime as dt
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


def schedule_tick(schedule: dg.ScheduleDefinition, when: dt.datetime) -> list[dg.RunRequest]:
    with dg.build_schedule_context(
        scheduled_execution_time=when, repository_def=defs.get_repository_def()
    ) as context:
        return list(schedule.evaluate_tick(context).run_requests or [])


def test_daily_schedule_refreshes_the_latest_day_and_runs_by_default():
    schedule = defs.get_schedule_def("daily_refresh")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    requests = schedule_tick(schedule, dt.datetime(2026, 3, 1, 6, tzinfo=dt.UTC))
    assert len(requests) == 1
    assert requests[0].partition_key == "2026-02-28", "the day before the tick: complete"
    assert requests[0].run_key == "2026-02-28"
    assert requests[0].tags[dg.MAX_RUNTIME_SECONDS_TAG] == "3600"
    assert schedule.job_name == "refresh_all"
    job = defs.resolve_job_def("refresh_all")
    assert job.partitions_def is not None
    assert job.partitions_def.get_first_partition_key() == "2018-01-01"
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
    # 23:30 UTC on 1 March is 00:30 on 2 March in Berlin: the day before is 1 March there.
    (request,) = schedule_tick(schedule, dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC))
    assert request.tags[dg.MAX_RUNTIME_SECONDS_TAG] == "900"
    assert request.partition_key == "2026-03-01"


def test_the_schedule_runs_the_refresh_job_for_its_day_and_skips_before_the_first(monkeypatch):
    monkeypatch.setenv("JAFFLE_PARTITIONS_START", "2026-03-01")
    schedule = build_daily_refresh_schedule()
    (request,) = schedule_tick(schedule, dt.datetime(2026, 3, 2, 6, tzinfo=dt.UTC))
    assert request.partition_key == "2026-03-01"
    with dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 3, 1, 6, tzinfo=dt.UTC),
        repository_def=defs.get_repository_def(),
    ) as context:
        result = schedule.evaluate_tick(context)
    assert not result.run_requests and "no partition" in (result.skip_message or "")


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


DAY1, DAY2 = "2018-01-01", "2018-01-02"
SAMPLE = settings.SAMPLE_DATA_DIR


def drop(landing_dir: Path, *names: str) -> None:
    """Copy sample files into the landing folder: `raw_customers`, or `raw_orders/<day>`."""
    for name in names:
        target = landing_dir / f"{name}.csv"
        target.parent.mkdir(exist_ok=True)
        shutil.copy(SAMPLE / f"{name}.csv", target)


def drop_day(landing_dir: Path, day: str) -> None:
    drop(landing_dir, f"raw_orders/{day}", f"raw_payments/{day}")


def selected(request: dg.RunRequest) -> set[str]:
    return {k.to_user_string() for k in request.asset_selection or []}


def requests(result: dg.SensorExecutionData) -> list[dg.RunRequest]:
    return list(result.run_requests or [])


def only_request(result: dg.SensorExecutionData) -> dg.RunRequest:
    found = requests(result)
    assert len(found) == 1, result.skip_message
    return found[0]


def test_sensor_watches_landing_dir_every_10_seconds():
    sensor = defs.get_sensor_def("raw_files_sensor")
    assert sensor.minimum_interval_seconds == 10
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_a_complete_day_is_requested_once_stable(landing_dir, clock, tick):
    drop(landing_dir, "raw_customers")
    drop_day(landing_dir, DAY1)

    first = tick()
    assert not first.run_requests, "not before the stability window"
    assert "waiting for raw_customers.csv, raw_orders/2018-01-01.csv" in (first.skip_message or "")

    clock.now += 19
    assert not tick().run_requests

    clock.now += 1
    request = only_request(tick())
    assert request.partition_key == DAY1
    assert set(RAW) | {"stg_orders", "customers", "order_count_chart"} <= selected(request)
    ops = request.run_config["ops"]
    for table, name in (
        ("raw_customers", "raw_customers.csv"),
        ("raw_orders", f"raw_orders/{DAY1}.csv"),
        ("raw_payments", f"raw_payments/{DAY1}.csv"),
    ):
        st = (landing_dir / name).stat()
        assert ops[table]["config"] == {
            "from_landing": True,
            "expected_size": st.st_size,
            "expected_mtime_ns": st.st_mtime_ns,
        }
        assert request.tags[f"jaffle/landing_{table}"] == (
            f"{name} size={st.st_size} mtime_ns={st.st_mtime_ns}"
        )
        assert f"{name}:{st.st_size}:{st.st_mtime_ns}" in (request.run_key or "")
    assert request.tags["trigger"] == "landing"
    assert request.tags[dg.MAX_RUNTIME_SECONDS_TAG] == "3600"

    clock.now += 60
    later = tick()
    assert not later.run_requests, "a day is loaded once"
    assert "no new or changed raw files" in (later.skip_message or "")


def test_each_complete_day_gets_its_own_run_and_a_half_day_waits(landing_dir, clock, tick):
    drop_day(landing_dir, DAY1)
    drop_day(landing_dir, DAY2)
    drop(landing_dir, "raw_orders/2018-01-03")  # its payments file has not arrived
    tick()
    clock.now += 20
    found = requests(tick())
    assert sorted(r.partition_key or "" for r in found) == [DAY1, DAY2]
    for request in found:
        assert "raw_customers" not in selected(request), "no customers file landed"
        assert set(request.run_config["ops"]) == {"raw_orders", "raw_payments"}

    clock.now += 20
    result = tick()
    assert not result.run_requests
    assert "raw_orders/2018-01-03.csv" in (result.skip_message or "")
    drop(landing_dir, "raw_payments/2018-01-03")
    tick()
    clock.now += 20
    assert only_request(tick()).partition_key == "2018-01-03"


def test_a_file_still_growing_is_not_requested(landing_dir, clock, tick):
    drop_day(landing_dir, DAY1)
    payments = landing_dir / "raw_payments" / f"{DAY1}.csv"
    lines = payments.read_text().splitlines(keepends=True)
    payments.write_text(lines[0])
    for line in lines[1:]:
        tick()
        clock.now += 15
        with payments.open("a") as out:
            out.write(line)
        assert not tick().run_requests, "size changed between ticks"
        clock.now += 15
    clock.now += 20
    request = only_request(tick())
    assert request.run_config["ops"]["raw_payments"]["config"]["expected_size"] == (
        payments.stat().st_size
    )


def test_temporary_hidden_and_foreign_names_are_ignored(landing_dir, clock, tick):
    (landing_dir / "raw_orders").mkdir()
    (landing_dir / "raw_payments").mkdir()
    source = SAMPLE / "raw_orders" / f"{DAY1}.csv"
    for name in (f"{DAY1}.csv.part", f"{DAY1}.csv.tmp", f".{DAY1}.csv", "2018-1-1.csv"):
        shutil.copy(source, landing_dir / "raw_orders" / name)
    shutil.copy(source, landing_dir / "raw_orders.csv")  # the old flat layout
    shutil.copy(
        SAMPLE / "raw_payments" / f"{DAY1}.csv", landing_dir / "raw_payments" / f"{DAY1}.csv"
    )
    tick()
    clock.now += 100
    result = tick()
    assert not result.run_requests, "the day's orders file is only a .part so far"

    # The documented protocol: the rename makes the file appear whole under its real name.
    part = landing_dir / "raw_orders" / f"{DAY1}.csv.part"
    part.rename(landing_dir / "raw_orders" / f"{DAY1}.csv")
    tick()
    clock.now += 20
    assert only_request(tick()).partition_key == DAY1


def test_a_symlinked_file_or_day_folder_is_not_followed(landing_dir, clock, tick):
    (landing_dir / "raw_orders").symlink_to(SAMPLE / "raw_orders")
    (landing_dir / "raw_payments").mkdir()
    (landing_dir / "raw_payments" / f"{DAY1}.csv").symlink_to(
        SAMPLE / "raw_payments" / f"{DAY1}.csv"
    )
    tick()
    clock.now += 100
    assert not tick().run_requests
    assert landing.landed_files(landing_dir) == {}


def test_a_changed_file_reruns_its_day_only(landing_dir, clock, tick):
    drop_day(landing_dir, DAY1)
    drop_day(landing_dir, DAY2)
    tick()
    clock.now += 20
    first = requests(tick())
    assert len(first) == 2

    payments = landing_dir / "raw_payments" / f"{DAY1}.csv"
    stamp = time.time() + 5
    os.utime(payments, (stamp, stamp))
    tick()
    clock.now += 20
    second = only_request(tick())
    assert second.partition_key == DAY1
    assert second.run_key not in {r.run_key for r in first}
    assert {"raw_orders", "raw_payments", "stg_orders", "customers"} <= selected(second)
    assert second.run_config["ops"]["raw_payments"]["config"]["expected_mtime_ns"] == (
        payments.stat().st_mtime_ns
    )


def test_a_changed_customers_file_runs_the_latest_landed_day(landing_dir, clock, tick):
    drop_day(landing_dir, DAY1)
    drop_day(landing_dir, DAY2)
    tick()
    clock.now += 20
    assert len(requests(tick())) == 2

    drop(landing_dir, "raw_customers")
    tick()
    clock.now += 20
    request = only_request(tick())
    assert request.partition_key == DAY2
    assert set(request.run_config["ops"]) == {"raw_customers"}
    assert {"raw_customers", "stg_customers", "customers"} <= selected(request)
    assert not selected(request) & {"raw_orders", "raw_payments"}


def test_customers_landed_with_several_days_ride_with_the_earliest(landing_dir, clock, tick):
    """The later days' runs, queued behind the first, see the new customers their orders name."""
    drop(landing_dir, "raw_customers")
    drop_day(landing_dir, DAY1)
    drop_day(landing_dir, DAY2)
    tick()
    clock.now += 20
    first, second = sorted(requests(tick()), key=lambda r: r.partition_key or "")
    assert first.partition_key == DAY1 and set(first.run_config["ops"]) == set(RAW)
    assert {"raw_customers", "stg_customers"} <= selected(first)
    assert set(second.run_config["ops"]) == {"raw_orders", "raw_payments"}


def test_a_settling_customers_file_holds_the_day_back(landing_dir, clock, tick):
    drop_day(landing_dir, DAY1)
    tick()
    clock.now += 15
    drop(landing_dir, "raw_customers")
    tick()
    clock.now += 10
    result = tick()
    assert not result.run_requests, "the customers file is not stable yet"
    assert "raw_customers.csv" in (result.skip_message or "")
    clock.now += 10
    request = only_request(tick())
    assert request.partition_key == DAY1
    assert set(request.run_config["ops"]) == set(RAW)


def test_days_outside_the_partitions_are_not_requested(landing_dir, clock, tick, monkeypatch):
    monkeypatch.setenv("JAFFLE_PARTITIONS_START", DAY2)
    drop_day(landing_dir, DAY1)
    tick()
    clock.now += 20
    result = tick()
    assert not result.run_requests
    assert "no new or changed raw files" in (result.skip_message or "")


def test_stability_window_comes_from_env_in_real_time(landing_dir, tick, monkeypatch):
    monkeypatch.setenv("JAFFLE_LANDING_STABLE_SECONDS", "0.5")
    drop_day(landing_dir, DAY1)
    assert not tick().run_requests
    time.sleep(0.6)
    assert only_request(tick()).partition_key == DAY1


def test_sensor_run_carries_the_max_runtime_from_env(landing_dir, clock, tick, monkeypatch):
    monkeypatch.setenv("JAFFLE_MAX_RUNTIME_SECONDS", "120")
    drop_day(landing_dir, DAY1)
    tick()
    clock.now += 20
    assert only_request(tick()).tags[dg.MAX_RUNTIME_SECONDS_TAG] == "120"


def test_sensor_skips_without_a_landing_folder(tmp_path, monkeypatch, tick):
    monkeypatch.setenv("LANDING_DIR", str(tmp_path / "absent"))
    result = tick()
    assert not result.run_requests
    assert "does not exist" in (result.skip_message or "")


@pytest.mark.parametrize(
    "cursor",
    [
        {"raw_orders": [1, 2]},  # the RAW_DATA_URI sensor's
        {"requested": {"raw_orders": [1, 2]}, "settling": {}},  # the flat layout's
    ],
)
def test_a_cursor_from_an_older_sensor_starts_over(landing_dir, clock, tick, cursor):
    drop_day(landing_dir, DAY1)
    tick.cursor = json.dumps(cursor)
    tick()
    clock.now += 20
    assert only_request(tick()).partition_key == DAY1


def test_settle_only_passes_a_signature_seen_unchanged_for_the_window():
    name = f"raw_orders/{DAY1}.csv"
    sig = landing.Signature(10, 1)
    stable, settling = landing.settle(landing.LandingState(), {name: sig}, 0, 20)
    assert not stable
    state = landing.LandingState(settling=settling)
    stable, settling = landing.settle(state, {name: landing.Signature(11, 2)}, 19, 20)
    assert not stable, "changed: the window starts again"
    state = landing.LandingState(settling=settling)
    stable, settling = landing.settle(state, {name: landing.Signature(11, 2)}, 38, 20)
    assert not stable
    stable, _ = landing.settle(state, {name: landing.Signature(11, 2)}, 39, 20)
    assert stable == {name: landing.Signature(11, 2)}
    assert landing.LandingState.from_json(state.to_json()) == state
