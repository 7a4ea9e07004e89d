"""Scrape time of jaffle-metrics with 10,000 runs in storage, on SQLite and on Postgres.

Each storage gets a history shaped like the stack's: real in-process runs of a job with the
refresh's shape (9 assets in a chain, 26 asset checks, two of them failing), then bulk copies
of the real run's rows (its run, its asset and check events, its check executions) under new run
ids until the storage holds --runs runs (94 % SUCCESS, 5 % FAILURE, the rest CANCELED, STARTED,
QUEUED), then one more real run so the latest records are real ones, and four daemon
heartbeats. The metrics server then runs in this process, configured as `jaffle-metrics` is
(Postgres: a fresh connection per checkout, statement timeout), and /metrics is fetched over
HTTP --scrapes times after one warm-up. Also timed: each read on its own, to show where a
scrape's time goes. Postgres is a throw-away server (tests/integration/test_metrics.py's
TemporaryPostgres), skipped when its binaries are missing. Figures are printed, nothing is
asserted; the target is a scrape under 1 s.

    uv run --frozen python bench/metrics_bench.py [--runs 10000] [--scrapes 10]
        [--storage sqlite,postgres]
"""

# No `from __future__ import annotations`: Dagster reads the bench assets' annotations.
import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as db
from dagster._core.storage.runs.schema import RunsTable
from dagster._daemon.types import DaemonHeartbeat
from dagster._serdes import serialize_value
from tables import table_text  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaffle_server import metrics  # noqa: E402
from tests.integration.test_metrics import (  # noqa: E402
    TemporaryPostgres,
    postgres_bin,
    queue_run,
    stack_job_origin,
)

ASSETS = 9
CHECKS = 26
FAILING_CHECKS = 2
STATUS_MIX = (
    (dg.DagsterRunStatus.SUCCESS, 0.94),
    (dg.DagsterRunStatus.FAILURE, 0.05),
    (dg.DagsterRunStatus.CANCELED, 0.008),
    (dg.DagsterRunStatus.STARTED, 0.001),
    (dg.DagsterRunStatus.QUEUED, 0.001),
)
DAEMONS = ("SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR", "MONITORING")
TARGET_SECONDS = 1.0


def bench_assets() -> list[Any]:
    """A chain of ASSETS assets with CHECKS checks spread over them, FAILING_CHECKS failing."""
    assets: list[Any] = []
    for i in range(ASSETS):
        deps = [assets[-1]] if assets else []

        @dg.asset(name=f"model_{i}", deps=deps)
        def model() -> None:
            """A model of the bench's refresh."""

        assets.append(model)
    checks = [data_test(assets[i % ASSETS], i) for i in range(CHECKS)]
    return assets + checks


def data_test(target: Any, i: int) -> Any:
    @dg.asset_check(asset=target, name=f"test_{i}")
    def check() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=i >= FAILING_CHECKS)

    return check


@dg.asset
def unreachable_source() -> None:
    """Fails, as a load does when its source is down."""
    raise RuntimeError("source unreachable")


def sql_run_storage(instance: dg.DagsterInstance) -> Any:
    """The SQL run storage under dagster.yaml's `storage:` wrapper (a bench may reach in)."""
    storage: Any = instance.run_storage
    return storage._storage.run_storage if hasattr(storage, "_storage") else storage


def seed(instance: dg.DagsterInstance, runs: int) -> dict[str, int]:
    """Fill the storage as described in the module docstring; returns the runs by status."""
    refresh = bench_assets()
    template = dg.materialize(refresh, instance=instance).run_id
    dg.materialize([unreachable_source], instance=instance, raise_on_error=False)
    copies = runs - 3  # the template, the failed run and the last real run are real
    rng = random.Random(1)
    statuses = rng.choices(
        [status for status, _ in STATUS_MIX], [share for _, share in STATUS_MIX], k=copies
    )
    run_ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(copies)]
    now = time.time()
    origin = stack_job_origin("refresh")
    rows = []
    for run_id, status in zip(run_ids, statuses, strict=True):
        run = dg.DagsterRun(
            job_name="refresh", run_id=run_id, status=status, remote_job_origin=origin
        )
        started = now - rng.uniform(3600, 90 * 86400)
        rows.append(
            {
                "run_id": run_id,
                "pipeline_name": run.job_name,
                "status": status.value,
                "run_body": serialize_value(run),
                "start_time": started,
                "end_time": started + 60,
            }
        )
    # The storages' connections commit on exit (SQLite) or autocommit (Postgres).
    with sql_run_storage(instance).connect() as conn:
        conn.execute(RunsTable.insert(), rows)
    copy_events(instance, template, run_ids)
    dg.materialize(refresh, instance=instance)
    queue_run(instance)
    for n, daemon in enumerate(DAEMONS):
        instance.add_daemon_heartbeat(
            DaemonHeartbeat(timestamp=time.time() - n, daemon_type=daemon, daemon_id="d", errors=[])
        )
    return metrics.read_run_counts(instance)


def copy_events(instance: dg.DagsterInstance, template: str, run_ids: list[str]) -> None:
    """Copy the template run's indexed events and check executions to every run id, in SQL."""
    storage: Any = instance.event_log_storage
    with storage.index_connection() as conn:
        conn.execute(db.text("create temporary table bench_runs (run_id varchar(255))"))
        conn.execute(
            db.text("insert into bench_runs (run_id) values (:run_id)"),
            [{"run_id": run_id} for run_id in run_ids],
        )
        event_columns = ["event", "dagster_event_type", "timestamp", "step_key", "asset_key"]
        conn.execute(
            db.text(
                f"insert into event_logs (run_id, {', '.join(event_columns)}) "
                f"select b.run_id, {', '.join('e.' + c for c in event_columns)} "
                "from event_logs e cross join bench_runs b where e.run_id = :template "
                "order by b.run_id, e.id"
            ),
            {"template": template},
        )
        check_columns = [
            "asset_key",
            "check_name",
            "execution_status",
            "evaluation_event",
            "evaluation_event_timestamp",
            "evaluation_event_storage_id",
            "materialization_event_storage_id",
        ]
        conn.execute(
            db.text(
                f"insert into asset_check_executions (run_id, {', '.join(check_columns)}) "
                f"select b.run_id, {', '.join('c.' + c for c in check_columns)} "
                "from asset_check_executions c cross join bench_runs b "
                "where c.run_id = :template order by b.run_id, c.id"
            ),
            {"template": template},
        )
        conn.execute(db.text("drop table bench_runs"))


def count_rows(instance: dg.DagsterInstance) -> dict[str, int]:
    storage: Any = instance.event_log_storage
    with storage.index_connection() as conn:
        return {
            table: conn.execute(db.text(f"select count(*) from {table}")).scalar_one()
            for table in ("event_logs", "asset_check_executions")
        }


@contextmanager
def serve(instance: dg.DagsterInstance) -> Iterator[str]:
    server = metrics.create_server(instance, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def timed(fn: Callable[[], object], times: int) -> list[float]:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def measure(name: str, instance: dg.DagsterInstance, runs: int, scrapes: int) -> list[list[str]]:
    started = time.perf_counter()
    by_status = seed(instance, runs)
    seeded = time.perf_counter() - started
    total = sum(by_status.values())
    rows = count_rows(instance)
    print(
        f"{name}: seeded {total} runs ({by_status}), {rows['event_logs']} indexed events, "
        f"{rows['asset_check_executions']} check executions in {seeded:.0f} s",
        flush=True,
    )
    metrics.configure_storage(instance)
    table = []
    with serve(instance) as url:
        text = fetch(url).decode()  # warm-up
        assert "jaffle_instance_up 1.0" in text, text[:2000]
        scrape = timed(lambda: fetch(url), scrapes)
        table.append(row(name, "GET /metrics", scrape))
    parts: dict[str, Callable[[], object]] = {
        f"run counts ({len(dg.DagsterRunStatus)} statuses)": lambda: metrics.read_run_counts(
            instance
        ),
        "asset records": instance.get_asset_records,
        "check results": lambda: metrics.read_check_results(instance),
        "daemon heartbeats": instance.get_daemon_heartbeats,
    }
    for part, fn in parts.items():
        table.append(row(name, part, timed(fn, scrapes)))
    if name == "postgres":
        # What the kept connections save: the same scrape with a new connection per query.
        instance.optimize_for_webserver(
            statement_timeout=metrics.STATEMENT_TIMEOUT_MS, pool_recycle=0, max_overflow=2
        )
        with serve(instance) as url:
            fetch(url)
            new = timed(lambda: fetch(url), scrapes)
            table.append(row(name, "GET /metrics, new connections", new))
    return table


def row(storage: str, what: str, samples: list[float]) -> list[str]:
    return [
        storage,
        what,
        f"{min(samples) * 1000:.1f}",
        f"{statistics.median(samples) * 1000:.1f}",
        f"{max(samples) * 1000:.1f}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description="Scrape time of jaffle-metrics.")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=10)
    parser.add_argument("--storage", default="sqlite,postgres")
    args = parser.parse_args()
    table: list[list[str]] = []
    for storage in args.storage.split(","):
        if storage == "sqlite":
            with tempfile.TemporaryDirectory() as home, dg.instance_for_test(temp_dir=home) as inst:
                table += measure("sqlite", inst, args.runs, args.scrapes)
        elif storage == "postgres":
            bin_dir = postgres_bin()
            if bin_dir is None:
                print("postgres: skipped, no initdb on this machine")
                continue
            server = TemporaryPostgres(bin_dir)
            try:
                server.start()
                url = server.create_database("bench")
                overrides = {"storage": {"postgres": {"postgres_url": url}}}
                with dg.instance_for_test(overrides=overrides) as inst:
                    table += measure("postgres", inst, args.runs, args.scrapes)
            finally:
                server.close()
        else:
            parser.error(f"unknown storage {storage!r}: sqlite or postgres")
    print()
    print(f"{args.scrapes} timings each, after one warm-up scrape (ms); target < 1000 ms a scrape")
    print(table_text(["storage", "what", "min", "median", "max"], table))
    worst = max(float(r[3]) for r in table if r[1] == "GET /metrics") / 1000
    print(
        f"slowest median scrape: {worst:.3f} s ({'under' if worst < TARGET_SECONDS else 'OVER'}"
        f" the {TARGET_SECONDS:.0f} s target)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
