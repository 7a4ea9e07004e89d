"""`jaffle-metrics`: the stack's Prometheus endpoint, read from the Dagster instance's storage.

Every scrape of `/metrics` reads the storage afresh through a prometheus_client custom
collector: no polling loop, no cached state that could go stale, nothing lost on a restart.
`/healthz` answers without touching the storage, for the container's healthcheck. The storage is
the one $DAGSTER_HOME/dagster.yaml names (Postgres in the stack); the process needs neither the
Docker socket nor the code location. docs/operations.md lists the metrics and what they cost.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, TimeoutError
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import dagster as dg
import sqlalchemy as db
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.errors import DagsterHomeNotSetError
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.sqlalchemy_compat import db_fetch_mappings, db_select
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger("jaffle.metrics")

DEFAULT_PORT = 9108
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
# A scrape whose read of the storage takes longer reports jaffle_instance_up 0, well within
# Prometheus' default 10 s scrape timeout; so does a query running longer than the timeout.
SCRAPE_DEADLINE_SECONDS = 5.0
STATEMENT_TIMEOUT_MS = 5000
COMPLETED_CHECK_STATUSES = ("SUCCEEDED", "FAILED")
# Check results come from the latest executions only (read_check_results): a year of the stack's
# daily refresh with its 26 checks.
CHECK_WINDOW = 10_000

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class InstanceState:
    """What one scrape read from the storage. Timestamps are Unix seconds."""

    runs_by_status: Mapping[str, int]
    # asset -> timestamp of its latest materialization (assets never materialized are absent)
    last_materialization: Mapping[str, float]
    # (asset, check) -> the latest completed execution of the check failed
    check_failed: Mapping[tuple[str, str], bool]
    # asset -> latest freshness state the daemon recorded (assets never evaluated are absent)
    freshness: Mapping[str, str]
    # daemon type -> timestamp of its latest heartbeat
    heartbeats: Mapping[str, float]


def read_run_counts(instance: dg.DagsterInstance) -> dict[str, int]:
    """Runs in storage for every status, 0 included, so that each series always exists."""
    # One count a status on the indexed status column, through the public API: it works with
    # whatever storage class dagster.yaml configures (its `storage:` key wraps the SQL storage).
    return {
        status.value: instance.get_runs_count(dg.RunsFilter(statuses=[status]))
        for status in dg.DagsterRunStatus
    }


def read_check_results(instance: dg.DagsterInstance) -> dict[tuple[str, str], bool]:
    """(asset, check) -> whether the latest completed execution of the check failed.

    Dagster has no API listing the check keys without loading the code location, so this reads
    the asset_check_executions table itself, in one query: the latest completed row of each
    check among the last CHECK_WINDOW executions. Reading the whole table instead grows with the
    history (0.7 s on Postgres at 10,000 runs of the stack's 26 checks); the window is read
    backwards along the primary key, so its cost stays flat, and a check that no longer runs
    drops out.
    A run that planned a check and died before evaluating it leaves the previous result standing.
    """
    index_connection = getattr(instance.event_log_storage, "index_connection", None)
    if index_connection is None:  # not a SQL event log: no check metrics rather than no metrics
        return {}
    table = AssetCheckExecutionsTable
    # ORDER BY id DESC LIMIT: a backward scan of the primary key, whatever the planner's
    # statistics (an `id > max(id) - N` bound is unknown at plan time, and Postgres then chose
    # a full scan of the table).
    recent = (
        db_select([table.c.id, table.c.asset_key, table.c.check_name, table.c.execution_status])
        .order_by(table.c.id.desc())
        .limit(CHECK_WINDOW)
        .subquery()
    )
    latest_ids = (
        db_select([db.func.max(recent.c.id)])
        .where(recent.c.execution_status.in_(COMPLETED_CHECK_STATUSES))
        .group_by(recent.c.asset_key, recent.c.check_name)
    )
    query = db_select([table.c.asset_key, table.c.check_name, table.c.execution_status]).where(
        table.c.id.in_(latest_ids)
    )
    with index_connection() as conn:
        rows = db_fetch_mappings(conn, query)
    results = {}
    for row in rows:
        asset_key = dg.AssetKey.from_db_string(row["asset_key"])
        if asset_key is not None:
            key = (asset_key.to_user_string(), str(row["check_name"]))
            results[key] = row["execution_status"] == "FAILED"
    return results


def read_state(instance: dg.DagsterInstance) -> InstanceState:
    """Everything a scrape reports, read in one pass: the same few queries, on indexed columns,
    whatever the number of runs in storage."""
    records = instance.get_asset_records()
    last_materialization = {}
    for record in records:
        entry = record.asset_entry.last_materialization
        if entry is not None:
            last_materialization[record.asset_entry.asset_key.to_user_string()] = entry.timestamp
    asset_keys = [record.asset_entry.asset_key for record in records]
    freshness = instance.get_freshness_state_records(asset_keys) if asset_keys else {}
    return InstanceState(
        runs_by_status=read_run_counts(instance),
        last_materialization=last_materialization,
        check_failed=read_check_results(instance),
        freshness={
            key.to_user_string(): rec.freshness_state.value for key, rec in freshness.items()
        },
        heartbeats={
            daemon: heartbeat.timestamp
            for daemon, heartbeat in instance.get_daemon_heartbeats().items()
        },
    )


def read_state_retrying(instance: dg.DagsterInstance) -> InstanceState:
    """read_state, read again when a kept connection turned out dead (Postgres restarted).

    SQLAlchemy then drops that pool's connections; each storage has its own pool, so the
    runs' and the event log's may each fail once.
    """
    for _ in range(2):
        try:
            return read_state(instance)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            logger.info("Reconnecting to the storage: %s", str(exc.orig).strip())
    return read_state(instance)


def metric_families(state: InstanceState | None, now: float, duration: float) -> list[Metric]:
    """The metrics of one scrape; `state` None means the storage could not be read."""
    up = GaugeMetricFamily(
        "jaffle_instance_up", "1 if this scrape could read the Dagster instance's storage."
    )
    scrape = GaugeMetricFamily(
        "jaffle_scrape_duration_seconds", "Time this scrape took to read the Dagster instance."
    )
    runs = GaugeMetricFamily("jaffle_runs", "Runs in storage, by status.", labels=["status"])
    queue = GaugeMetricFamily(
        "jaffle_run_queue_length", "Runs waiting in the queue for the daemon (QUEUED)."
    )
    last = GaugeMetricFamily(
        "jaffle_asset_last_materialization_timestamp_seconds",
        "Unix time of the latest materialization of the asset.",
        labels=["asset"],
    )
    lag = GaugeMetricFamily(
        "jaffle_freshness_lag_seconds",
        "Seconds since the latest materialization of the asset.",
        labels=["asset"],
    )
    freshness = GaugeMetricFamily(
        "jaffle_asset_freshness_state",
        "1 for the asset's latest freshness state recorded by the daemon, 0 for the others.",
        labels=["asset", "state"],
    )
    checks = GaugeMetricFamily(
        "jaffle_asset_check_failed",
        "1 if the latest completed execution of the asset check failed, else 0.",
        labels=["asset", "check"],
    )
    heartbeat = GaugeMetricFamily(
        "jaffle_daemon_heartbeat_age_seconds",
        "Seconds since the daemon's latest heartbeat.",
        labels=["daemon"],
    )
    up.add_metric([], 0 if state is None else 1)
    scrape.add_metric([], duration)
    if state is not None:
        for status, count in state.runs_by_status.items():
            runs.add_metric([status], count)
        queue.add_metric([], state.runs_by_status.get(dg.DagsterRunStatus.QUEUED.value, 0))
        for asset, timestamp in sorted(state.last_materialization.items()):
            last.add_metric([asset], timestamp)
            lag.add_metric([asset], max(0.0, now - timestamp))
        for asset, current in sorted(state.freshness.items()):
            for possible in FreshnessState:
                freshness.add_metric([asset, possible.value], int(possible.value == current))
        for (asset, check), failed in sorted(state.check_failed.items()):
            checks.add_metric([asset, check], int(failed))
        for daemon, timestamp in sorted(state.heartbeats.items()):
            heartbeat.add_metric([daemon], max(0.0, now - timestamp))
    return [up, scrape, runs, queue, last, lag, freshness, checks, heartbeat]


class InstanceCollector:
    """prometheus_client collector reading the instance on every scrape.

    The read runs in a short-lived thread and the scrape waits for it at most `deadline`
    seconds: with Postgres down, Dagster retries each connection for about 11 s, longer than
    Prometheus' default 10 s scrape timeout, and the scrape should say "down" instead of timing
    out. Scrapes arriving while a read is in flight wait for that read rather than starting
    another, so a storage that hangs never piles up readers. No result outlives its scrape.
    """

    def __init__(
        self,
        instance: dg.DagsterInstance,
        clock: Callable[[], float] = time.time,
        deadline: float = SCRAPE_DEADLINE_SECONDS,
    ) -> None:
        self._instance = instance
        self._clock = clock
        self._deadline = deadline
        self._lock = threading.Lock()
        self._in_flight: Future[InstanceState] | None = None

    def describe(self) -> list[Metric]:
        # Names only, so that registering does not read the storage.
        return metric_families(None, 0.0, 0.0)

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        state = self._read()
        yield from metric_families(state, self._clock(), time.perf_counter() - started)

    def _read(self) -> InstanceState | None:
        with self._lock:
            if self._in_flight is None or self._in_flight.done():
                self._in_flight = self._start_read()
            future = self._in_flight
        try:
            return future.result(timeout=self._deadline)
        except TimeoutError:
            logger.warning(
                "The Dagster instance's storage did not answer within %s s", self._deadline
            )
        except Exception as exc:  # a scrape reports the storage as down, it does not fail
            logger.warning("Cannot read the Dagster instance's storage: %s", exc)
        return None

    def _start_read(self) -> Future[InstanceState]:
        future: Future[InstanceState] = Future()

        def read() -> None:
            try:
                future.set_result(read_state_retrying(self._instance))
            except BaseException as exc:
                future.set_exception(exc)

        # A daemon thread: a read stuck in connection retries must not delay the exit.
        threading.Thread(target=read, name="jaffle-metrics-read", daemon=True).start()
        return future


def create_app(registry: CollectorRegistry) -> WsgiApp:
    """/metrics from the registry, /healthz without touching the storage, 404 elsewhere."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == METRICS_PATH:
            return metrics(environ, start_response)
        if path == HEALTH_PATH:
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [f"Not found: metrics are at {METRICS_PATH}\n".encode()]

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    # Prometheus scrapes every few seconds: an access line per scrape would drown the log.
    def log_message(self, format: str, *args: Any) -> None:
        pass


def create_server(instance: dg.DagsterInstance, host: str, port: int) -> WSGIServer:
    """An HTTP server (not yet serving) for the instance's metrics; port 0 picks a free port."""
    registry = CollectorRegistry()
    registry.register(InstanceCollector(instance))
    ProcessCollector(registry=registry)
    return make_server(
        host, port, create_app(registry), _ThreadingServer, handler_class=_QuietHandler
    )


def configure_storage(instance: dg.DagsterInstance) -> None:
    """Postgres: one kept connection for each storage (runs, event log) and a statement timeout.

    A new connection costs more than all of a scrape's queries together (password hashing and
    a Postgres backend each time; see docs/operations.md). A kept connection that outlived a
    Postgres restart fails once; read_state_retrying then reads again on a fresh one.
    """
    instance.optimize_for_webserver(
        statement_timeout=STATEMENT_TIMEOUT_MS, pool_recycle=-1, max_overflow=2
    )


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaffle-metrics",
        description="Serve Prometheus metrics read from the Dagster instance ($DAGSTER_HOME).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        instance = dg.DagsterInstance.get()
    except DagsterHomeNotSetError as exc:
        print(f"jaffle-metrics: {exc}", file=sys.stderr)
        return 2
    # `docker stop` sends SIGTERM: leave serve_forever and close the storage cleanly.
    signal.signal(signal.SIGTERM, _stop)
    with instance:
        configure_storage(instance)
        server = create_server(instance, args.host, args.port)
        logger.info(
            "Serving Prometheus metrics on http://%s:%s%s (health: %s)",
            args.host,
            server.server_port,
            METRICS_PATH,
            HEALTH_PATH,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
