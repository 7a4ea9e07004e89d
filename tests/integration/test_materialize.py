"""Every asset materialized in-process into temp dirs, results checked against Python's own sums.

Runs cover a partition range (`first...last` day of the data) or one day, as
`dagster asset materialize --partition-range` / `--partition` do.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from jaffle_platform import settings
from jaffle_platform.definitions import defs
from jaffle_platform.generate import generate
from tests.integration.expected import (
    expected_customers,
    expected_histogram,
    expected_order_amounts,
)

REPO = Path(__file__).resolve().parents[2]


FIRST_DAY = "2018-01-01"


def data_days(raw_dir: Path) -> tuple[str, str]:
    """The first and last day with an orders file."""
    days = sorted(p.stem for p in (raw_dir / "raw_orders").glob("*.csv"))
    return days[0], days[-1]


def materialize(
    instance: dg.DagsterInstance,
    selection: str = "*",
    raise_on_error: bool = True,
    days: tuple[str, str] | str | None = None,
):
    """One run of the selection over `days` (a day, or a (first, last) range, last included;
    default: the days of the files in RAW_DATA_URI, a local folder here).

    Assets without partitions (the dbt side before it is partitioned) run in a second run after
    the partitioned ones, whose result is returned when it failed.
    """
    job = defs.resolve_implicit_global_asset_job_def()
    graph = defs.resolve_asset_graph()
    keys = dg.AssetSelection.from_string(selection).resolve(graph)
    if days is None:
        days = data_days(Path(settings.raw_data_uri()))
    partitioned = sorted(k for k in keys if graph.get(k).partitions_def is not None)
    others = sorted(k for k in keys if graph.get(k).partitions_def is None)
    result = None
    if partitioned:
        if isinstance(days, str):
            where: dict = {"partition_key": days}
        else:
            where = {
                "tags": {
                    "dagster/asset_partition_range_start": days[0],
                    "dagster/asset_partition_range_end": days[1],
                }
            }
        result = job.execute_in_process(
            instance=instance, asset_selection=partitioned, raise_on_error=raise_on_error, **where
        )
        if not result.success:
            return result
    if others:
        result = job.execute_in_process(
            instance=instance, asset_selection=others, raise_on_error=raise_on_error
        )
    assert result is not None
    return result


def query(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def generated(workspace):
    """A bigger data set than the sample, from another seed, in the workspace's raw dir."""
    generate(workspace.raw_dir, customers=400, orders=900, seed=11)
    return workspace


def test_materialize_all_builds_marts_that_match_the_raw_files(generated, instance):
    ws = generated
    result = materialize(instance, days=data_days(ws.raw_dir))
    assert result.success

    customers = {
        row[0]: (
            row[1] and str(row[1]),
            row[2] and str(row[2]),
            row[3],
            row[4],
        )
        for row in query(
            ws.duckdb_path,
            "select customer_id, first_order, most_recent_order, number_of_orders, "
            "customer_lifetime_value from main.customers",
        )
    }
    assert customers == expected_customers(ws.raw_dir)
    assert any(n == 0 for _, _, n, _ in customers.values()), "idle customers are kept"

    orders = {
        row[0]: dict(
            zip(
                ("credit_card", "coupon", "bank_transfer", "gift_card", "amount"),
                row[1:],
                strict=True,
            )
        )
        for row in query(
            ws.duckdb_path,
            "select order_id, credit_card_amount, coupon_amount, bank_transfer_amount, "
            "gift_card_amount, amount from main.orders",
        )
    }
    assert orders == expected_order_amounts(ws.raw_dir)

    chart = ws.reports_dir / "order_count_chart.html"
    html = chart.read_text()
    assert "<script src=" not in html or "cdn.plot.ly" not in html
    assert "Plotly.newPlot" in html and len(html) > 1_000_000, "plotly.js is embedded"

    meta = instance.get_latest_materialization_event(
        dg.AssetKey("order_count_chart")
    ).asset_materialization.metadata  # type: ignore[union-attr]
    table = re.findall(r"\| (\d+) \| (\d+) \|", meta["histogram"].value)
    assert [(int(a), int(b)) for a, b in table] == expected_histogram(ws.raw_dir)
    assert meta["path"].value == str(chart)

    raw_meta = instance.get_latest_materialization_event(
        dg.AssetKey("raw_orders")
    ).asset_materialization.metadata  # type: ignore[union-attr]
    assert raw_meta["num_rows"].value == 900
    assert [c.name for c in raw_meta["dagster/column_schema"].value.columns] == [
        "id",
        "user_id",
        "order_date",
        "status",
        "load_day",
    ]
    model_meta = instance.get_latest_materialization_event(
        dg.AssetKey("customers")
    ).asset_materialization.metadata  # type: ignore[union-attr]
    assert model_meta["dagster/row_count"].value == 400

    checks = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert checks and all(e.event_specific_data.passed for e in checks)  # type: ignore[union-attr]


def test_bad_file_fails_the_run_and_keeps_every_table(workspace, instance):
    ws = workspace
    assert materialize(instance, days=data_days(ws.raw_dir)).success
    every_row = "select * from jaffle_shop.raw_orders order by all"
    before = query(ws.duckdb_path, every_row)
    customers_before = query(ws.duckdb_path, "select * from main.customers order by 1")

    # The sample's busiest day: 2018-03-25 holds six orders.
    orders_csv = ws.raw_dir / "raw_orders" / "2018-03-25.csv"
    lines = orders_csv.read_text().splitlines()
    assert len(lines) == 7
    lines[5] = lines[5].rsplit(",", 1)[0] + ",teleported"
    orders_csv.write_text("\n".join(lines) + "\n")

    result = materialize(instance, raise_on_error=False, days="2018-03-25")
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message  # type: ignore[union-attr]
    assert "raw_orders" in message and str(orders_csv) in message
    assert "line 6" in message and "'teleported'" in message
    assert query(ws.duckdb_path, every_row) == before
    assert query(ws.duckdb_path, "select * from main.customers order by 1") == customers_before


def test_remote_raw_data_uri_downloads_over_http(workspace, instance, monkeypatch):
    import functools
    import http.server
    import threading

    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(workspace.raw_dir)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("RAW_DATA_URI", base + "/")
        assert materialize(instance, "raw_customers", days=FIRST_DAY).success
        rows = query(workspace.duckdb_path, "select count(*) from jaffle_shop.raw_customers")
        assert rows == [(100,)]
        # Days over http: a day the server has no file for (404) is skipped, not an error.
        result = materialize(instance, "raw_orders", days=("2018-01-01", "2018-01-10"))
        assert result.success
        loaded = query(
            workspace.duckdb_path,
            "select load_day::varchar, count(*) from jaffle_shop.raw_orders group by 1 order by 1",
        )
        assert loaded == [
            ("2018-01-01", 1),
            ("2018-01-02", 3),
            ("2018-01-03", 2),
            ("2018-01-08", 2),
            ("2018-01-10", 2),
        ]
        meta = instance.get_latest_materialization_event(
            dg.AssetKey("raw_orders")
        ).asset_materialization.metadata  # type: ignore[union-attr]
        assert meta["missing_days"].value == (
            "5 day(s): 2018-01-04 to 2018-01-07 (4 days), 2018-01-09"
        )
        monkeypatch.setenv("RAW_DATA_URI", base + "/missing")
        result = materialize(instance, "raw_customers", raise_on_error=False, days=FIRST_DAY)
        assert not result.success
    finally:
        server.shutdown()


def run_cli(workspace, *args: str) -> subprocess.CompletedProcess:
    env_home = workspace.root / "dagster_home"
    env_home.mkdir(exist_ok=True)
    import os

    env = {**os.environ, "DAGSTER_HOME": str(env_home)}
    return subprocess.run(
        ["dagster", "asset", "materialize", "-m", "jaffle_platform.definitions", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_materialize_one_asset_and_exit_nonzero_on_bad_input(workspace):
    ok = run_cli(workspace, "--select", "raw_customers", "--partition", FIRST_DAY)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert query(workspace.duckdb_path, "select count(*) from jaffle_shop.raw_customers") == [
        (100,)
    ]
    (workspace.raw_dir / "raw_customers.csv").write_text("id,first_name\n1,Ann\n")
    bad = run_cli(workspace, "--select", "raw_customers", "--partition", FIRST_DAY)
    assert bad.returncode != 0
    assert "missing required column(s) last_name" in bad.stdout + bad.stderr
    assert query(workspace.duckdb_path, "select count(*) from jaffle_shop.raw_customers") == [
        (100,)
    ]


def _materialize_from_server(handler_cls, instance, monkeypatch):
    """raw_customers materialized with RAW_DATA_URI on a local server run by handler_cls."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("RAW_DATA_URI", f"http://127.0.0.1:{server.server_address[1]}")
        return materialize(instance, "raw_customers", raise_on_error=False, days=FIRST_DAY)
    finally:
        server.shutdown()
        server.server_close()


def _events(result, kind: str) -> list:
    return [e for e in result.all_events if e.event_type_value == kind]


def test_a_busy_download_server_is_retried_and_the_load_succeeds(workspace, instance, monkeypatch):
    import http.server

    body = (workspace.raw_dir / "raw_customers.csv").read_bytes()
    answered: list[int] = []

    class FlakyOnce(http.server.BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002
            pass

        def do_GET(self):  # noqa: N802
            status = 503 if not answered else 200
            answered.append(status)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) if status == 200 else 0))
            self.end_headers()
            if status == 200:
                self.wfile.write(body)

    result = _materialize_from_server(FlakyOnce, instance, monkeypatch)
    assert result.success
    assert answered == [503, 200]
    assert len(_events(result, "STEP_UP_FOR_RETRY")) == 1
    assert query(workspace.duckdb_path, "select count(*) from jaffle_shop.raw_customers") == [
        (100,)
    ]


def test_a_refused_download_fails_once_without_retry(workspace, instance, monkeypatch):
    import http.server

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002
            pass

        def do_GET(self):  # noqa: N802
            self.send_response(302)
            self.send_header("Location", "http://webserver:3000/graphql?query=mutation")
            self.send_header("Content-Length", "0")
            self.end_headers()

    result = _materialize_from_server(Elsewhere, instance, monkeypatch)
    assert not result.success
    assert not _events(result, "STEP_UP_FOR_RETRY")
    (failure,) = _events(result, "STEP_FAILURE")
    message = failure.event_specific_data.error.message  # type: ignore[union-attr]
    assert "http://webserver:3000/graphql" in message and "another origin" in message


def test_a_warehouse_locked_by_another_process_is_retried(workspace, instance):
    import sys

    assert materialize(instance, "raw_customers").success
    # Another process holds DuckDB's write lock for 3 s; the retry comes after 5 s.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(workspace.duckdb_path)!r})\n"
            "print('locked', flush=True)\n"
            "time.sleep(3)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = materialize(instance, "raw_customers", raise_on_error=False)
    finally:
        holder.wait(timeout=30)
    assert result.success
    (retry,) = _events(result, "STEP_UP_FOR_RETRY")
    cause = retry.event_specific_data.error.to_string()  # type: ignore[union-attr]
    assert "raw_customers" in cause and "lock" in cause.lower()
