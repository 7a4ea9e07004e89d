"""Alerts end to end, in-process: real runs of the project's assets in a real (sqlite) instance,
the real sensors evaluated tick after tick as the daemon does, and a real webhook receiver on
localhost that Apprise posts to (json://)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from dagster._core.instance.ref import InstanceRef
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon
from dagster._daemon.types import DaemonHeartbeat
from dagster_graphql.test.utils import execute_dagster_graphql

import jaffle_platform
from jaffle_platform import settings
from jaffle_platform.definitions import defs
from jaffle_platform.defs.alerts import delivery, sensors, watchdog
from jaffle_platform.defs.alerts.runs import RECOVERED_BY_TAG

PUBLIC = "http://dagster.example:3000"
HOUR = 3600.0


class Receiver:
    """A webhook on 127.0.0.1 that keeps every JSON body Apprise posts; can answer 500 first."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.requests = 0
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests += 1
                if receiver.fail_next:
                    receiver.fail_next -= 1
                    self.send_response(500)
                else:
                    receiver.messages.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_port}/"

    def titles(self) -> list[str]:
        return [m["title"] for m in self.messages]

    def take(self) -> list[dict]:
        """The messages received since the last take."""
        taken, self.messages = self.messages, []
        return taken

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def alerting(workspace, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    monkeypatch.setenv("JAFFLE_ALERT_URLS", receiver.url)
    monkeypatch.setenv("JAFFLE_PUBLIC_URL", PUBLIC)
    return receiver


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """In memory, like Postgres one event log for all runs (and 3 s faster to set up)."""
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def sqlite_instance() -> Iterator[dg.DagsterInstance]:
    """On disk, as `dagster dev` keeps it: one event log file a run, and the daemons it needs."""
    with dg.instance_for_test() as inst:
        yield inst


class Sensor:
    """Successive ticks of one of the project's sensors, carrying its cursor as the daemon does."""

    def __init__(self, name: str, instance: dg.DagsterInstance):
        self.definition = defs.resolve_sensor_def(name)
        self.instance = instance
        self.cursor: str | None = None

    def tick(self) -> str:
        with dg.build_sensor_context(
            cursor=self.cursor, definitions=defs, instance=self.instance
        ) as context:
            result = self.definition.evaluate_tick(context)
        assert not result.run_requests
        self.cursor = result.cursor or self.cursor
        return result.skip_message or ""


def materialize(
    instance: dg.DagsterInstance, names: str, tags: dict[str, str] | None = None
) -> dg.ExecuteInProcessResult:
    """The project's assets run as the UI runs them: the implicit asset job, a selection, over
    the range of days the raw data has (one run, as a backfill of that range is)."""
    keys = [dg.AssetKey(name) for name in names.split()]
    first, last = data_days(Path(settings.raw_data_uri()))
    range_tags = {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        asset_selection=keys,
        raise_on_error=False,
        tags={**range_tags, **(tags or {})},
    )


def alert_sensor_status() -> dict[str, dg.DefaultSensorStatus]:
    """Default status of the alert sensors, as the code location loads them now."""
    loaded = dg.load_from_defs_folder(path_within_project=Path(jaffle_platform.__file__).parent)
    return {s.name: s.default_status for s in loaded.sensors or [] if s.name.endswith("_alerts")}


def data_days(raw_dir: Path) -> tuple[str, str]:
    """The first and last day with an orders file."""
    days = sorted(p.stem for p in (raw_dir / "raw_orders").glob("*.csv"))
    return days[0], days[-1]


def orders_file(raw_dir: Path) -> Path:
    """The first day's orders file with at least two orders."""
    return next(
        p
        for p in sorted((raw_dir / "raw_orders").glob("*.csv"))
        if len(p.read_text().splitlines()) >= 3
    )


def break_orders(raw_dir: Path) -> str:
    """Gives the first orders file with two orders a fractional id on line 3, which the loader
    refuses; returns the good text."""
    path = orders_file(raw_dir)
    good = path.read_text()
    lines = good.splitlines()
    lines[2] = "1.5" + lines[2][lines[2].index(",") :]
    path.write_text("\n".join(lines) + "\n")
    return good


def test_a_failed_run_alerts_once_then_its_success_once(alerting, workspace, sqlite_instance):
    instance = sqlite_instance
    runs = Sensor("run_alerts", instance)
    assert "started" in runs.tick()

    good = break_orders(workspace.raw_dir)
    failed = materialize(instance, "raw_orders")
    assert not failed.success
    text = runs.tick()
    (message,) = alerting.take()
    assert message["type"] == "failure"
    assert message["title"] == f"Run failed: __ASSET_JOB ({failed.run_id[:8]})"
    body = message["message"]
    assert f"Run {failed.run_id} of job __ASSET_JOB failed." in body
    assert "Assets: raw_orders" in body
    assert (
        "First error: raw_orders: refused " in body
        and f"{orders_file(workspace.raw_dir).relative_to(workspace.raw_dir)}, line 3: "
        "column \"id\": '1.5' is not a plain integer"
        in body
    )
    assert body.endswith(f"{PUBLIC}/runs/{failed.run_id}")
    assert f"sent to {alerting.url}" in text

    assert runs.tick() == "no new run results"
    assert alerting.take() == [], "one event, one message"

    orders_file(workspace.raw_dir).write_text(good)
    fixed = materialize(instance, "raw_orders")
    assert fixed.success
    runs.tick()
    (recovered,) = alerting.take()
    assert recovered["type"] == "success"
    assert recovered["title"] == f"Recovered: __ASSET_JOB ({fixed.run_id[:8]})"
    assert f"succeeded after failed run {failed.run_id}" in recovered["message"]
    assert recovered["message"].endswith(f"{PUBLIC}/runs/{fixed.run_id}")

    assert materialize(instance, "raw_customers raw_orders raw_payments").success
    runs.tick()
    assert alerting.take() == [], "a success after a success says nothing"

    # Whoever opens the failed run sees that an alert went out, and which run recovered it.
    logged = [
        r.event_log_entry.message
        for r in instance.get_records_for_run(
            failed.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT
        ).records
    ]
    assert any(m.startswith("Alert 'Run failed") and alerting.url in m for m in logged)


def test_a_retry_recovers_its_parent_once(alerting, workspace, instance):
    runs = Sensor("run_alerts", instance)
    runs.tick()
    good = break_orders(workspace.raw_dir)
    failed = materialize(instance, "raw_orders")
    orders_file(workspace.raw_dir).write_text(good)
    # What run_retries (or "Re-execute" in the UI) creates: a run naming its parent.
    retry_tags = {"dagster/parent_run_id": failed.run_id, "dagster/root_run_id": failed.run_id}
    retry = materialize(instance, "raw_orders", tags=retry_tags)
    assert retry.success
    runs.tick()
    assert alerting.titles() == [
        f"Run failed: __ASSET_JOB ({failed.run_id[:8]})",
        f"Recovered: __ASSET_JOB ({retry.run_id[:8]})",
    ], "the failure is announced before its recovery, in one tick"
    run = instance.get_run_by_id(failed.run_id)
    assert run is not None and run.tags[RECOVERED_BY_TAG] == retry.run_id

    alerting.take()
    assert materialize(instance, "raw_orders", tags=retry_tags).success
    runs.tick()
    assert alerting.take() == [], "a second re-execution of the same failure is not news"


def test_a_failed_dbt_test_alerts_its_blocking_check(alerting, workspace, instance):
    runs = Sensor("run_alerts", instance)
    runs.tick()
    assert materialize(instance, "raw_customers raw_orders raw_payments").success
    # A status the loader would refuse, written behind its back: only dbt's test can catch it.
    con = duckdb.connect(str(workspace.duckdb_path))
    try:
        con.execute("update jaffle_shop.raw_orders set status = 'lost' where id = 1")
    finally:
        con.close()
    result = materialize(instance, "stg_customers stg_orders stg_payments")
    assert not result.success
    runs.tick()
    run_message, check_message = alerting.take()
    assert run_message["title"].startswith("Run failed: __ASSET_JOB")
    first_error = run_message["message"].split("First error: ", 1)[1]
    assert first_error.startswith("jaffle_shop_dbt_assets: The dbt CLI process")
    assert "FAIL 1 accepted_values_stg_orders_status" in first_error
    assert "\x1b[" not in first_error, "no terminal colours in a message"
    assert check_message["title"].startswith("Check failed: stg_orders accepted_values_stg_orders")
    assert check_message["type"] == "failure"
    body = check_message["message"]
    assert f"on stg_orders failed in run {result.run_id}" in body
    assert "Failing rows: 1" in body
    assert f"{PUBLIC}/assets/stg_orders?view=checks" in body
    assert runs.tick() == "no new run results"
    assert alerting.take() == []


def test_a_malformed_url_is_reported_and_the_valid_ones_still_alerted(
    workspace, receiver, instance, monkeypatch
):
    monkeypatch.setenv("JAFFLE_ALERT_URLS", f"xyz://s3cr3t-token, {receiver.url}")
    # The code location loads, with the sensors running: URLs are only parsed when they evaluate.
    assert alert_sensor_status() == {
        "run_alerts": dg.DefaultSensorStatus.RUNNING,
        "freshness_alerts": dg.DefaultSensorStatus.RUNNING,
        "daemon_alerts": dg.DefaultSensorStatus.RUNNING,
    }
    runs = Sensor("run_alerts", instance)
    runs.tick()
    break_orders(workspace.raw_dir)
    materialize(instance, "raw_orders")
    text = runs.tick()
    assert (
        "JAFFLE_ALERT_URLS: URL 1 of 2 (xyz://…) is not a valid Apprise URL: Unparseable URL"
        in text
    )
    assert "s3cr3t" not in text, "the rest of a URL is often a secret"
    assert [m["title"][:11] for m in receiver.take()] == ["Run failed:"]

    monkeypatch.setenv("JAFFLE_ALERT_URLS", "slack://only-one-token")
    freshness = Sensor("freshness_alerts", instance)
    freshness.tick()
    text = freshness.tick()
    assert "URL 1 of 1 (slack://…) is not a valid Apprise URL" in text
    assert "only-one-token" not in text
    failed_again = materialize(instance, "raw_orders")
    text = runs.tick()
    assert f"({failed_again.run_id[:8]}): NOT delivered: no usable URL in JAFFLE_ALERT_URLS" in text
    assert receiver.take() == []


def test_an_undeliverable_alert_is_reported_once_and_not_repeated(
    workspace, instance, receiver, monkeypatch
):
    monkeypatch.setattr(delivery, "RETRY_PAUSES_S", (0.05, 0.05))
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("JAFFLE_ALERT_URLS", f"json://127.0.0.1:{dead}/ {receiver.url}")
    runs = Sensor("run_alerts", instance)
    runs.tick()
    break_orders(workspace.raw_dir)
    materialize(instance, "raw_orders")
    receiver.fail_next = 1  # the live receiver answers 500 once: the retry delivers
    text = runs.tick()
    assert f"NOT delivered to json://127.0.0.1:{dead}/" in text and "(3 tries)" in text
    assert f"sent to {receiver.url}" in text
    assert receiver.requests == 2 and len(receiver.take()) == 1
    assert runs.tick() == "no new run results", "not retried at the next tick: no storm"


def test_alerts_are_off_without_urls(workspace, instance, receiver, monkeypatch):
    monkeypatch.delenv("JAFFLE_ALERT_URLS", raising=False)
    monkeypatch.setenv("JAFFLE_ALERT_URLS_FILE", str(workspace.root / "no-such-file"))
    # Running all the same: they read the URLs at each tick, so alerts turn on without a reload.
    assert set(alert_sensor_status().values()) == {dg.DefaultSensorStatus.RUNNING}
    runs = Sensor("run_alerts", instance)
    runs.tick()
    break_orders(workspace.raw_dir)
    materialize(instance, "raw_orders")
    assert runs.tick() == sensors.OFF
    # Turned on later, it does not replay what happened while alerts were off.
    monkeypatch.setenv("JAFFLE_ALERT_URLS", receiver.url)
    assert runs.tick() == "no new run results"
    assert receiver.requests == 0


def beat(instance: dg.DagsterInstance, daemon: str, at: float) -> None:
    instance.add_daemon_heartbeat(DaemonHeartbeat(at, daemon, "test-daemon"))


def test_a_daemon_thread_that_stops_heartbeating_alerts_once_and_when_back(
    alerting, sqlite_instance
):
    instance = sqlite_instance
    now = time.time()
    required = list(instance.get_required_daemon_types())
    assert {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR"} <= set(required)
    for daemon in required:
        beat(instance, daemon, now)
    daemon_sensor = Sensor("daemon_alerts", instance)
    assert daemon_sensor.tick() == f"{len(required) - 1} daemon threads heartbeating"

    beat(instance, "SCHEDULER", now - 400)
    beat(instance, "SENSOR", now - 400)  # the watchdog's to report, not this sensor's
    daemon_sensor.tick()
    (message,) = alerting.take()
    assert message["title"] == "Dagster daemon not heartbeating: SCHEDULER"
    assert "SCHEDULER: last heartbeat" in message["message"] and "6 min ago" in message["message"]
    assert message["message"].endswith(f"{PUBLIC}/deployment/daemons")
    assert daemon_sensor.tick() == "still not heartbeating: SCHEDULER"
    assert alerting.take() == []

    beat(instance, "SCHEDULER", time.time())
    daemon_sensor.tick()
    assert alerting.titles() == ["Dagster daemon heartbeating again: SCHEDULER"]


def test_the_watchdog_alerts_when_the_whole_daemon_is_down(alerting, sqlite_instance):
    instance = sqlite_instance
    targets = delivery.load_targets()
    started = time.time() - 1000
    now = time.time()
    for daemon in instance.get_required_daemon_types():
        beat(instance, daemon, now - 600)
    assert len(watchdog.check(instance, targets, started, now)) == 1
    (message,) = alerting.take()
    assert message["title"].startswith("Dagster daemon not heartbeating: ")
    assert "SENSOR" in message["title"] and "SCHEDULER" in message["title"]
    assert watchdog.check(instance, targets, started, now + 30) == []

    # Restarted: it does not announce the same outage again (its state is in the instance).
    assert watchdog.check(instance, delivery.load_targets(), started, now + 60) == []
    for daemon in instance.get_required_daemon_types():
        beat(instance, daemon, now + 90)
    watchdog.check(instance, targets, started, now + 100)
    assert alerting.titles() == ["Dagster daemon heartbeating again: SENSOR"]


def test_the_watchdog_command_looks_once_and_alerts(alerting, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        for daemon in instance.get_required_daemon_types():
            beat(instance, daemon, time.time() - 600)
    alive = tmp_path / "alive"
    done = subprocess.run(
        [sys.executable, "-m", "jaffle_platform.defs.alerts.watchdog", "--once"]
        + ["--alive-file", str(alive)],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert alive.exists()
    (message,) = alerting.take()
    assert message["title"].startswith("Dagster daemon not heartbeating: ")
    assert "SENSOR" in message["title"]
    assert "sent to json://127.0.0.1" in done.stderr


def test_a_watchdog_started_with_the_daemon_waits_for_its_first_heartbeat(
    alerting, sqlite_instance
):
    instance = sqlite_instance
    now = time.time()
    for daemon in instance.get_required_daemon_types():
        beat(instance, daemon, now - 86400)  # from before a `docker compose down`
    targets = delivery.load_targets()
    assert watchdog.check(instance, targets, started=now, now=now + 10) == []
    assert len(watchdog.check(instance, targets, started=now, now=now + 200)) == 1


class FreshnessDaemonOnThisCode:
    """Dagster's own freshness daemon and GraphQL API, on this code location loaded in-process."""

    def __init__(self, context):
        self.context = context

    def __call__(self, at: float) -> None:
        """One iteration of the daemon, with the clock at `at`."""
        with freeze_time(at):
            list(FreshnessDaemon().run_iteration(self.context))

    def ui(self, query: str) -> Mapping[str, Any]:
        result = execute_dagster_graphql(self.context.create_request_context(), query)
        assert not result.errors, result.errors
        return result.data


@pytest.fixture
def freshness_daemon(sqlite_instance) -> Iterator[FreshnessDaemonOnThisCode]:
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(
            module_name="jaffle_platform.definitions", attribute="defs"
        ),
        location_name="jaffle_platform",
    )
    with create_test_daemon_workspace_context(
        InProcessWorkspaceLoadTarget(origin), sqlite_instance
    ) as context:
        yield FreshnessDaemonOnThisCode(context)


# What the UI asks the webserver for on the asset pages.
FRESHNESS_QUERY = """
query {
  assetNodes(assetKeys: [{path: ["customers"]}, {path: ["orders"]}, {path: ["raw_orders"]}]) {
    assetKey { path }
    internalFreshnessPolicy { ... on TimeWindowFreshnessPolicy { failWindowSeconds } }
    freshnessStatusInfo { freshnessStatus }
  }
  instance { freshnessEvaluationEnabled }
}
"""


def test_a_stale_asset_alerts_once_and_when_fresh_again(
    alerting, sqlite_instance, freshness_daemon
):
    instance = sqlite_instance
    now = time.time()
    freshness = Sensor("freshness_alerts", instance)
    freshness.tick()
    for name, age_h in (("customers", 27), ("orders", 25), ("order_count_chart", 1)):
        with freeze_time(now - age_h * HOUR):
            instance.report_runless_asset_event(dg.AssetMaterialization(name))
    freshness_daemon(now)
    ui = freshness_daemon.ui(FRESHNESS_QUERY)
    assert ui["instance"]["freshnessEvaluationEnabled"] is True
    assert {
        tuple(node["assetKey"]["path"]): (
            node["internalFreshnessPolicy"],
            node["freshnessStatusInfo"],
        )
        for node in ui["assetNodes"]
    } == {
        ("customers",): ({"failWindowSeconds": 26 * 3600}, {"freshnessStatus": "DEGRADED"}),
        ("orders",): ({"failWindowSeconds": 26 * 3600}, {"freshnessStatus": "HEALTHY"}),
        ("raw_orders",): (None, None),
    }
    freshness.tick()
    (message,) = alerting.take()
    assert message["title"] == "Stale: customers"
    body = message["message"]
    assert "expects a materialization at least every 1 d 2 h" in body
    assert "1 d 3 h ago" in body
    assert body.endswith(f"{PUBLIC}/assets/customers")

    freshness_daemon(now + 60)
    assert freshness.tick() == "no new freshness changes"
    assert alerting.take() == []

    instance.report_runless_asset_event(dg.AssetMaterialization("customers"))
    freshness_daemon(time.time())
    freshness.tick()
    assert alerting.titles() == ["Fresh again: customers"]


def test_the_urls_file_turns_alerts_on_and_off_at_the_next_tick(
    workspace, instance, receiver, monkeypatch
):
    """In the stack, init writes JAFFLE_ALERT_URLS to a file and no service has the variable."""
    monkeypatch.delenv("JAFFLE_ALERT_URLS", raising=False)
    urls_file = workspace.root / "alert-urls"
    monkeypatch.setenv("JAFFLE_ALERT_URLS_FILE", str(urls_file))
    runs = Sensor("run_alerts", instance)
    runs.tick()
    urls_file.write_text(f"{receiver.url}\n")
    break_orders(workspace.raw_dir)
    failed = materialize(instance, "raw_orders")
    assert runs.tick().startswith(f"Run failed: __ASSET_JOB ({failed.run_id[:8]})")
    assert [m["title"][:11] for m in receiver.take()] == ["Run failed:"]

    urls_file.unlink()
    materialize(instance, "raw_orders")
    assert runs.tick() == sensors.OFF
    assert receiver.requests == 1

    urls_file.write_text("")
    urls_file.chmod(0)
    if os.geteuid() != 0:  # root reads it whatever the mode
        with pytest.raises(ValueError, match="JAFFLE_ALERT_URLS_FILE: cannot read"):
            settings.alert_urls()
