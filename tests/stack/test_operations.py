"""What a refresh publishes in the stack (issue 8): the dbt docs on the reports server at /dbt/,
and the read-only warehouse snapshot in the host folder, readable while a writer holds the
warehouse."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from jaffle_stack import metrics
from jaffle_stack.stack import ObservedRun, Stack

pytestmark = pytest.mark.stack

REPORTS_URL = "http://127.0.0.1:8080"


def fetch(path: str) -> str:
    with urllib.request.urlopen(f"{REPORTS_URL}{path}", timeout=10) as response:
        assert response.status == 200, path
        return response.read().decode()


def test_dbt_docs_are_served_at_dbt(stack: Stack, materialized: ObservedRun) -> None:
    page = fetch("/dbt/")
    catalog = json.loads(fetch("/dbt/catalog.json"))
    for name in ("customers", "orders"):
        # The page carries the manifest inline, and the catalog has the built table's columns.
        assert f"model.jaffle_shop.{name}" in page, name
        assert catalog["nodes"][f"model.jaffle_shop.{name}"]["columns"], name


def test_snapshot_opens_while_a_writer_holds_the_warehouse(
    stack: Stack, materialized: ObservedRun
) -> None:
    snapshot = Path(stack.env["JAFFLE_SNAPSHOT_DIR"]) / "warehouse.duckdb"
    assert snapshot.is_file(), "a refresh published the snapshot on the host"
    expected = stack.warehouse_counts(["customers", "orders"])

    # A writer on the live warehouse, from a container of the stack's image, as a run would be.
    stack.wait_idle()
    holder = subprocess.Popen(
        ["docker", "run", "--rm", "-i", "-v", "jaffle_warehouse:/w", stack.user_code_image(),
         "python3", "-c",
         "import duckdb, sys; con = duckdb.connect('/w/warehouse.duckdb'); "
         "print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with duckdb.connect(str(snapshot), read_only=True) as con:
            counts = {
                t: (con.execute(f"select count(*) from main.{t}").fetchone() or [0])[0]
                for t in expected
            }
        assert time.monotonic() - started < 5, "the reader did not wait for the writer"
        assert counts == expected
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def test_metrics_after_a_successful_refresh(stack: Stack, materialized: ObservedRun) -> None:
    stack.wait_idle()
    samples = metrics.scrape()
    assert metrics.value(samples, "jaffle_instance_up") == 1
    assert (metrics.value(samples, "jaffle_runs", status="SUCCESS") or 0) >= 1
    assert metrics.value(samples, "jaffle_run_queue_length") == 0
    now = time.time()
    for asset in ("raw_orders", "customers", "orders", "order_count_chart"):
        stamp = metrics.value(
            samples, "jaffle_asset_last_materialization_timestamp_seconds", asset=asset
        )
        assert stamp is not None and now - 24 * 3600 < stamp <= now, asset
    checks = samples["jaffle_asset_check_failed"]
    assert checks and set(checks.values()) == {0.0}, "every dbt test of the refresh passed"
    beats = samples["jaffle_daemon_heartbeat_age_seconds"]
    assert beats[(("daemon", "SCHEDULER"),)] < 120


def psql(stack: Stack, sql: str) -> str:
    """As the Postgres superuser, in the postgres container: what an operator would type."""
    db = stack.env.get("POSTGRES_DB") or "dagster"
    return stack.compose("exec", "-T", "postgres", "psql", "-U", "postgres", "-d", db,
                         "-tA", "-c", sql).strip()  # fmt: skip


def run_exists(stack: Stack, run_id: str) -> bool:
    found = stack.graphql(
        "query($id: ID!) { runOrError(runId: $id) { __typename } }", {"id": run_id}
    )
    return found["runOrError"]["__typename"] == "Run"


def compute_logs(stack: Stack, run_id: str) -> str:
    folder = f"/var/lib/dagster/compute_logs/{run_id}"
    return subprocess.run(
        ["docker", "exec", stack.container("daemon"), "ls", folder],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip


def test_retention_deletes_runs_older_than_the_window_and_keeps_recent_ones(
    stack: Stack, materialized: ObservedRun
) -> None:
    """Two finished runs moved back in time, 40 and 29 days (JAFFLE_RETENTION_DAYS: 30): the
    retention job deletes the first with its event log and compute logs, and keeps the second."""
    stack.wait_idle()
    old, recent = (stack.wait_run(stack.launch_job("retention"))["runId"] for _ in range(2))
    assert compute_logs(stack, old), "the run wrote compute logs"
    for run_id, days in ((old, 40), (recent, 29)):
        psql(stack, f"update runs set create_timestamp = now() at time zone 'utc' - "
                    f"interval '{days} days' where run_id = '{run_id}'")  # fmt: skip
    assert int(psql(stack, f"select count(*) from event_logs where run_id = '{old}'")) > 0

    retention = stack.wait_run(stack.launch_job("retention"))
    assert retention["status"] == "SUCCESS", retention

    assert not run_exists(stack, old)
    assert psql(stack, f"select count(*) from event_logs where run_id = '{old}'") == "0"
    assert compute_logs(stack, old) == ""
    assert run_exists(stack, recent) and run_exists(stack, materialized.run_id)
