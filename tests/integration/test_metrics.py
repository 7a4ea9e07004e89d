"""The metrics service against real Dagster instances (SQLite, and Postgres when its binaries are
on this machine): real runs materialize, fail, run checks and queue; then /metrics is scraped over
HTTP from a real server and the values are compared with what the storage recorded.

The Postgres tests start a throw-away server (initdb + postgres, as uid 65534 when the tests run
as root, which Postgres refuses) on a free localhost port; TemporaryPostgres is also used by
bench/metrics_bench.py.
"""

# No `from __future__ import annotations`: Dagster reads the assets' config annotation.
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml
from dagster._core.remote_origin import (
    GrpcServerCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._daemon.types import DaemonHeartbeat
from prometheus_client.parser import text_string_to_metric_families

from jaffle_server import metrics

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
HEARTBEAT_AGE = 42.0


def postgres_bin() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TemporaryPostgres:
    """A throw-away Postgres server on 127.0.0.1 with password (scram) auth, like the stack's."""

    user = "postgres"
    password = "metrics-test-password"

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        # Not under pytest's tmp_path: its parents are private to root, and Postgres may not
        # run as root.
        self.root = Path(tempfile.mkdtemp(prefix="jaffle-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.root, NOBODY, NOBODY)
            shutil.chown(pwfile, NOBODY, NOBODY)
        self._run(
            "initdb",
            *("-D", str(self.data), "-U", self.user, "--auth=scram-sha-256"),
            *(f"--pwfile={pwfile}", "--no-sync", "--encoding=UTF8", "--locale=C"),
        )

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
            command += [str(self.bin_dir / program), *args]
        return command

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(self._command(program, *args), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            # A throw-away server: durability off, so seeding a bench is fast.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        args = ["-D", str(self.data), "-p", str(self.port)]
        for key, setting in settings.items():
            args += ["-c", f"{key}={setting}"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self._command("postgres", *args), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg2.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not start:\n{self.log.read_text()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients
            self.process.wait(timeout=30)
        self.process = None

    def create_database(self, name: str) -> str:
        conn = psycopg2.connect(self.url("postgres"))
        conn.autocommit = True
        try:
            conn.cursor().execute(f'create database "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[TemporaryPostgres]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("no Postgres binaries (initdb) on this machine")
    server = TemporaryPostgres(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.close()


# The assets of the tests: an extract whose row count comes from run config, a check on it that
# fails on an empty extract, and an asset that always fails (its check is planned, never run).
class ExtractConfig(dg.Config):
    rows: int = 3


@dg.asset
def orders_extract(config: ExtractConfig) -> int:
    """Rows extracted (from run config)."""
    return config.rows


@dg.asset_check(asset=orders_extract)
def has_rows(orders_extract: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=orders_extract > 0, metadata={"rows": orders_extract})


@dg.asset
def broken_source() -> None:
    """Always fails, as a source that cannot be reached does."""
    raise RuntimeError("source unreachable")


@dg.asset_check(asset=broken_source)
def broken_source_not_empty() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def materialize_extract(instance: dg.DagsterInstance, rows: int) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [orders_extract, has_rows],
        instance=instance,
        run_config={"ops": {"orders_extract": {"config": {"rows": rows}}}},
    )


def materialize_broken(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [broken_source, broken_source_not_empty], instance=instance, raise_on_error=False
    )


def stack_job_origin(job_name: str) -> RemoteJobOrigin:
    """Where a run of the stack comes from: a job of the gRPC code location."""
    location = GrpcServerCodeLocationOrigin(host="user_code", port=4000, location_name="jaffle")
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job_name)


def queue_run(instance: dg.DagsterInstance) -> None:
    """A run waiting in the queue, as the QueuedRunCoordinator stores one until the daemon
    launches it."""
    instance.add_run(
        dg.DagsterRun(
            job_name="refresh",
            status=dg.DagsterRunStatus.QUEUED,
            remote_job_origin=stack_job_origin("refresh"),
        )
    )


def heartbeat(instance: dg.DagsterInstance, daemon: str, age: float) -> None:
    instance.add_daemon_heartbeat(
        DaemonHeartbeat(timestamp=time.time() - age, daemon_type=daemon, daemon_id="d1", errors=[])
    )


def last_materialization(instance: dg.DagsterInstance, asset: str) -> float:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None
    return event.timestamp


Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(base_url: str) -> Samples:
    """GET /metrics and parse it as Prometheus does: name -> {sorted labels: value}."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for labels, value in samples.get(name, {}).items()}


def value(samples: Samples, name: str) -> float:
    return samples[name][()]


@pytest.fixture(params=["sqlite", "postgres"])
def instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    overrides = {}
    if request.param == "postgres":
        server: TemporaryPostgres = request.getfixturevalue("postgres")
        url = server.create_database(f"metrics_{uuid.uuid4().hex}")
        overrides = {"storage": {"postgres": {"postgres_url": url}}}
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as inst:
        metrics.configure_storage(inst)  # as jaffle-metrics does
        yield inst


@contextmanager
def serve(instance: dg.DagsterInstance) -> Iterator[str]:
    """The metrics server on a free localhost port, serving from a thread; yields its URL."""
    server = metrics.create_server(instance, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def served(instance: dg.DagsterInstance) -> Iterator[str]:
    with serve(instance) as base_url:
        yield base_url


def test_values_after_a_failed_check_a_failed_run_and_a_queued_run(instance, served) -> None:
    assert materialize_extract(instance, rows=0).success  # the check fails, the run does not
    assert not materialize_broken(instance).success
    queue_run(instance)
    heartbeat(instance, "SCHEDULER", HEARTBEAT_AGE)
    extracted_at = last_materialization(instance, "orders_extract")

    before = time.time()
    samples = scrape(served)
    after = time.time()

    assert value(samples, "jaffle_instance_up") == 1
    runs = by_label(samples, "jaffle_runs", "status")
    assert runs == {status.value: 0 for status in dg.DagsterRunStatus} | {
        "SUCCESS": 1,
        "FAILURE": 1,
        "QUEUED": 1,
    }
    assert value(samples, "jaffle_run_queue_length") == 1
    # Only the asset that materialized has a timestamp, the event's own to the microsecond.
    assert by_label(
        samples, "jaffle_asset_last_materialization_timestamp_seconds", "asset"
    ) == pytest.approx({"orders_extract": extracted_at}, abs=1e-6)
    lag = by_label(samples, "jaffle_freshness_lag_seconds", "asset")
    assert set(lag) == {"orders_extract"}
    assert before - extracted_at <= lag["orders_extract"] <= after - extracted_at
    # The broken asset's check was planned and never ran: it has no result to report.
    assert samples["jaffle_asset_check_failed"] == {
        (("asset", "orders_extract"), ("check", "has_rows")): 1
    }
    age = by_label(samples, "jaffle_daemon_heartbeat_age_seconds", "daemon")
    assert set(age) == {"SCHEDULER"}
    assert HEARTBEAT_AGE <= age["SCHEDULER"] <= HEARTBEAT_AGE + (after - before) + 1
    assert 0 < value(samples, "jaffle_scrape_duration_seconds") < after - before
    assert "jaffle_asset_freshness_state" not in samples  # no freshness policy evaluated here


def test_values_follow_a_passing_rerun_and_the_queue_draining(instance, served) -> None:
    assert materialize_extract(instance, rows=0).success
    queue_run(instance)
    first = scrape(served)
    assert value(first, "jaffle_run_queue_length") == 1
    assert by_label(first, "jaffle_asset_check_failed", "check") == {"has_rows": 1}

    # The queued run leaves the queue (canceled from the UI); a rerun fixes the extract.
    (queued,) = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
    instance.report_run_canceled(queued)
    assert materialize_extract(instance, rows=5).success
    second = scrape(served)

    assert value(second, "jaffle_run_queue_length") == 0
    assert by_label(second, "jaffle_runs", "status")["SUCCESS"] == 2
    assert by_label(second, "jaffle_runs", "status")["CANCELED"] == 1
    assert by_label(second, "jaffle_asset_check_failed", "check") == {"has_rows": 0}
    rerun_at = last_materialization(instance, "orders_extract")
    name = "jaffle_asset_last_materialization_timestamp_seconds"
    assert by_label(second, name, "asset") == pytest.approx({"orders_extract": rerun_at}, abs=1e-6)
    assert rerun_at > by_label(first, name, "asset")["orders_extract"]


def test_a_check_outside_the_window_of_latest_executions_drops_out(monkeypatch, tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance, serve(instance) as base_url:
        assert materialize_extract(instance, rows=0).success
        assert by_label(scrape(base_url), "jaffle_asset_check_failed", "check") == {"has_rows": 1}
        # Two newer executions (the broken asset's check, planned twice and never run) and a
        # window of two: has_rows is no longer among the latest executions.
        materialize_broken(instance)
        materialize_broken(instance)
        monkeypatch.setattr(metrics, "CHECK_WINDOW", 2)
        assert "jaffle_asset_check_failed" not in scrape(base_url)
        monkeypatch.setattr(metrics, "CHECK_WINDOW", 3)
        assert by_label(scrape(base_url), "jaffle_asset_check_failed", "check") == {"has_rows": 1}


def test_health_and_unknown_paths() -> None:
    with dg.DagsterInstance.ephemeral() as instance, serve(instance) as base_url:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=5) as response:
            assert (response.status, response.read()) == (200, b"ok\n")
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base_url}/", timeout=5)
    assert missing.value.code == 404
    assert b"/metrics" in missing.value.read()


def test_without_dagster_home_the_service_says_so(monkeypatch, capsys) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert metrics.main(["--port", "0"]) == 2
    assert "DAGSTER_HOME" in capsys.readouterr().err


def stack_dagster_home(tmp_path: Path, port: int) -> Path:
    """A DAGSTER_HOME with the stack's dagster.yaml instance class and storage (the env: keys
    and all), on the temporary server's port; the Docker launcher and paths are left out."""
    stack = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text())
    storage = stack["storage"]
    storage["postgres"]["postgres_db"]["port"] = port
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = {"instance_class": stack["instance_class"], "storage": storage}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def wait_for(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                out, _ = process.communicate()
                raise AssertionError(f"jaffle-metrics did not answer on {url}:\n{out}") from None
            time.sleep(0.2)


def test_the_service_process_on_the_stack_config_survives_a_postgres_restart(
    postgres: TemporaryPostgres, tmp_path: Path
) -> None:
    """`python -m jaffle_server.metrics` with the stack's dagster.yaml and env: values while
    Postgres runs, jaffle_instance_up 0 (and still healthy) while it is down, values again once
    it is back, and a clean exit on SIGTERM (docker stop)."""
    database = "stack_metrics"
    postgres.create_database(database)
    env = os.environ | {
        "DAGSTER_HOME": str(stack_dagster_home(tmp_path, postgres.port)),
        "DAGSTER_POSTGRES_HOST": "127.0.0.1",
        "DAGSTER_POSTGRES_USER": postgres.user,
        "DAGSTER_POSTGRES_PASSWORD": postgres.password,
        "DAGSTER_POSTGRES_DB": database,
    }
    # Runs written by another process, as the daemon and run workers write them in the stack.
    with dg.instance_for_test(
        overrides={"storage": {"postgres": {"postgres_url": postgres.url(database)}}}
    ) as writer:
        assert materialize_extract(writer, rows=0).success
        queue_run(writer)
        heartbeat(writer, "SENSOR", 5)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "jaffle_server.metrics", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(f"{base}/healthz", process)
        running = scrape(base)
        assert value(running, "jaffle_instance_up") == 1
        assert by_label(running, "jaffle_runs", "status")["SUCCESS"] == 1
        assert value(running, "jaffle_run_queue_length") == 1
        assert by_label(running, "jaffle_asset_check_failed", "check") == {"has_rows": 1}
        assert set(by_label(running, "jaffle_daemon_heartbeat_age_seconds", "daemon")) == {"SENSOR"}
        assert value(running, "process_resident_memory_bytes") > 0

        # A restart between two scrapes: the kept connections are dead, the scrape reconnects.
        postgres.stop()
        postgres.start()
        restarted = scrape(base)
        assert value(restarted, "jaffle_instance_up") == 1
        assert value(restarted, "jaffle_run_queue_length") == 1

        postgres.stop()
        asked = time.monotonic()
        down = scrape(base)
        assert time.monotonic() - asked < metrics.SCRAPE_DEADLINE_SECONDS + 2
        assert value(down, "jaffle_instance_up") == 0
        assert "jaffle_runs" not in down  # no stale values: nothing rather than old numbers
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
            assert response.status == 200

        postgres.start()
        # The read started while Postgres was down is still in Dagster's connection retries
        # (about 11 s); scrapes wait for it, and it gets through once Postgres is back.
        deadline = time.monotonic() + 60
        while value(back := scrape(base), "jaffle_instance_up") == 0:
            assert time.monotonic() < deadline, "no values 60 s after Postgres came back"
        assert value(back, "jaffle_run_queue_length") == 1
    finally:
        if postgres.process is None:
            postgres.start()
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    assert "Serving Prometheus metrics on http://127.0.0.1" in out
    assert "The Dagster instance's storage did not answer within 5.0 s" in out
