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
