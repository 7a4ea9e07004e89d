"""The daily runs end to end, dbt included: the landing sensor's day runs, the daily schedule's
run of the latest day, and `dagster asset materialize --select '*'` over a range of days and one
day, each one run; after each, the marts equal sums computed here from the files loaded."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from jaffle_platform.definitions import defs
from jaffle_platform.defs.ingest import sensor as landing
from tests.integration.expected import expected_customers, expected_order_amounts
from tests.integration.test_materialize import data_days, materialize, query, run_cli


def marts(path: Path) -> tuple[dict[int, tuple], dict[int, dict]]:
    """The customers and orders marts, in the shapes of tests/integration/expected.py."""
    customers = {
        row[0]: (row[1] and str(row[1]), row[2] and str(row[2]), row[3], row[4])
        for row in query(
            path,
            "select customer_id, first_order, most_recent_order, number_of_orders, "
            "customer_lifetime_value from main.customers",
        )
    }
    methods = ("credit_card", "coupon", "bank_transfer", "gift_card", "amount")
    orders = {
        row[0]: dict(zip(methods, row[1:], strict=True))
        for row in query(
            path,
            "select order_id, credit_card_amount, coupon_amount, bank_transfer_amount, "
            "gift_card_amount, amount from main.orders",
        )
    }
    return customers, orders


def assert_marts_match(warehouse: Path, raw_dir: Path) -> None:
    customers, orders = marts(warehouse)
    assert customers == expected_customers(raw_dir)
    assert orders == expected_order_amounts(raw_dir)


def copy_day(source: Path, target: Path, day: str) -> None:
    for table in ("raw_orders", "raw_payments"):
        (target / table).mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / table / f"{day}.csv", target / table / f"{day}.csv")


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def test_the_sensors_day_runs_build_the_marts_of_the_landed_days(
    workspace, instance, tmp_path, monkeypatch
):
    """Each run the sensor requests (a day, the landed assets and everything downstream, dbt
    included) is executed as the daemon would launch it; a changed file reruns its day."""
    box = tmp_path / "landing"
    box.mkdir()
    monkeypatch.setenv("LANDING_DIR", str(box))
    monkeypatch.delenv("JAFFLE_LANDING_STABLE_SECONDS", raising=False)
    clock = [time.time()]
    monkeypatch.setattr(landing, "_now", lambda: clock[0])
    days = sorted(p.stem for p in (workspace.raw_dir / "raw_orders").glob("*.csv"))[:4]
    shutil.copy2(workspace.raw_dir / "raw_customers.csv", box / "raw_customers.csv")
    for day in days:
        copy_day(workspace.raw_dir, box, day)
    # The configured source has other files: a sensor's run loads the landed ones.
    (workspace.raw_dir / "raw_customers.csv").write_text("id,first_name,last_name\n1,X,Y\n")

    sensor = defs.get_sensor_def("raw_files_sensor")
    cursor: str | None = None

    def tick() -> list[dg.RunRequest]:
        nonlocal cursor
        with dg.build_sensor_context(cursor=cursor, definitions=defs, instance=instance) as ctx:
            result = sensor.evaluate_tick(ctx)
        cursor = result.cursor or cursor
        return list(result.run_requests or [])

    def launch(request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        return defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            asset_selection=list(request.asset_selection or []),
            partition_key=request.partition_key,
            run_config=request.run_config,
            tags=request.tags,
        )

    assert tick() == []
    clock[0] += 21
    requests = tick()
    assert [r.partition_key for r in requests] == days
    for request in requests:
        selected = {k.to_user_string() for k in request.asset_selection or []}
        assert {"raw_orders", "stg_orders", "orders", "customers", "order_count_chart"} <= selected
        assert launch(request).success
    assert len(instance.get_runs()) == len(days)
    assert_marts_match(workspace.duckdb_path, box)

    # A status change re-exported in the second day's file: that day runs again, alone.
    orders_file = box / "raw_orders" / f"{days[1]}.csv"
    header, *rows = orders_file.read_text().splitlines()
    # An order no later landed day re-exports, so the changed row is its latest.
    i = next(i for i, r in enumerate(rows) if not _a_later_day_has(box, r.split(",")[0], days[1]))
    fields = rows[i].split(",")
    fields[3] = "returned" if fields[3] != "returned" else "completed"
    rows[i] = ",".join(fields)
    orders_file.write_text("\n".join([header, *rows]) + "\n")
    clock[0] += 1
    assert tick() == []
    clock[0] += 21
    (rerun,) = tick()
    assert rerun.partition_key == days[1]
    assert launch(rerun).success
    assert_marts_match(workspace.duckdb_path, box)
    status = f"select status from main.orders where order_id = {int(fields[0])}"
    assert query(workspace.duckdb_path, status) == [(fields[3],)]


def _a_later_day_has(box: Path, order_id: str, day: str) -> bool:
    """True when a day after `day` re-exports the order (its row wins over the changed one)."""
    return any(
        line.split(",")[0] == order_id
        for p in (box / "raw_orders").glob("*.csv")
        if p.stem > day
        for line in p.read_text().splitlines()[1:]
    )


def test_cli_range_then_the_schedules_day_then_one_day_are_one_run_each(workspace):
    """A newcomer's backfill by CLI, the next day's file arriving and the daily schedule running
    it, then the day replayed by CLI: three runs, the marts right after each."""
    ws = workspace
    first, last = data_days(ws.raw_dir)
    held = ws.root / "held"
    copy_day(ws.raw_dir, held, last)
    for table in ("raw_orders", "raw_payments"):
        (ws.raw_dir / table / f"{last}.csv").unlink()
    previous = data_days(ws.raw_dir)[1]

    cli = run_cli(ws, "--select", "*", "--partition-range", f"{first}...{previous}")
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert_marts_match(ws.duckdb_path, ws.raw_dir)

    copy_day(held, ws.raw_dir, last)
    schedule = defs.get_schedule_def("daily_refresh")
    tick_time = dt.datetime.combine(
        dt.date.fromisoformat(last) + dt.timedelta(days=1), dt.time(6), tzinfo=dt.UTC
    )
    with dg.DagsterInstance.from_config(str(ws.root / "dagster_home")) as instance:
        with dg.build_schedule_context(
            scheduled_execution_time=tick_time, repository_def=defs.get_repository_def()
        ) as context:
            (request,) = schedule.evaluate_tick(context).run_requests or []
        assert request.partition_key == last
        result = defs.resolve_job_def("refresh_all").execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags
        )
        assert result.success
        assert_marts_match(ws.duckdb_path, ws.raw_dir)
        assert (ws.root / "snapshot" / "warehouse.duckdb").exists()

    cli = run_cli(ws, "--select", "*", "--partition", last)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert_marts_match(ws.duckdb_path, ws.raw_dir)
    with dg.DagsterInstance.from_config(str(ws.root / "dagster_home")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 3
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        assert runs[0].tags.get("dagster/partition") == last
        assert runs[2].tags.get("dagster/asset_partition_range_end") == previous


def raw_customers_load(result: dg.ExecuteInProcessResult) -> dict:
    """The raw_customers load's metadata (the same for each day of a range run)."""
    events = [
        e for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("raw_customers")
    ]  # fmt: skip
    loads = [{k: v.value for k, v in e.materialization.metadata.items()} for e in events]
    assert loads and all(load == loads[0] for load in loads)
    return loads[0]


def comments(path: Path) -> dict[str, str]:
    return dict(
        query(
            path,
            "select table_name, coalesce(comment, '') from duckdb_tables() "
            "where table_name in ('raw_customers', 'customers')",
        )
    )


def test_an_unchanged_customer_file_is_kept_and_a_changed_one_reconciled(workspace, instance):
    """A day run skips the customer file the table was loaded from, and `customers` skips
    comparing every customer; a changed file is loaded and reconciled, even when the run that
    loaded it stopped before dbt."""
    ws = workspace
    first, last = data_days(ws.raw_dir)
    full = materialize(instance, days=(first, last))
    assert raw_customers_load(full)["unchanged"] is False
    assert_marts_match(ws.duckdb_path, ws.raw_dir)
    loaded = comments(ws.duckdb_path)
    assert loaded["raw_customers"]
    assert loaded["customers"].startswith(loaded["raw_customers"] + " models=")

    day = materialize(instance, days=last)
    assert raw_customers_load(day)["unchanged"] is True
    assert comments(ws.duckdb_path) == loaded
    assert_marts_match(ws.duckdb_path, ws.raw_dir)

    # Customer 1 renamed, customer 101 new (no orders): loaded by a run of raw_customers
    # alone, so dbt's next run finds a snapshot it has not reconciled with.
    path = ws.raw_dir / "raw_customers.csv"
    text = path.read_text().replace("1,Jimmy,V.", "1,James,V.") + "101,Ada,L.\n"
    path.write_text(text)
    alone = materialize(instance, selection="raw_customers", days=last)
    assert raw_customers_load(alone)["unchanged"] is False
    assert comments(ws.duckdb_path)["customers"] == loaded["customers"]

    after = materialize(instance, days=last)
    assert raw_customers_load(after)["unchanged"] is True
    assert_marts_match(ws.duckdb_path, ws.raw_dir)
    assert query(
        ws.duckdb_path,
        "select customer_id, first_name from main.customers where customer_id in (1, 101) "
        "order by 1",
    ) == [(1, "James"), (101, "Ada")]
    now = comments(ws.duckdb_path)
    assert now["raw_customers"] != loaded["raw_customers"]
    assert now["customers"].startswith(now["raw_customers"] + " models=")


def test_days_landed_before_any_customer_list_fail_with_what_to_do(workspace, instance):
    """A fresh warehouse whose first run loads a day's orders and payments but no customer
    list: the dbt step fails, naming the missing table and how to load it."""
    ws = workspace
    _, last = data_days(ws.raw_dir)
    result = materialize(
        instance, selection="key:raw_orders+ or key:raw_payments+", days=last, raise_on_error=False
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "jaffle_shop_dbt_assets"
    message = failure.step_failure_data.error.message  # type: ignore[union-attr]
    assert "raw_customers: not in" in message and "(never loaded, or dropped)" in message
    assert "land its file in the landing folder" in message
    assert query(
        ws.duckdb_path,
        "select table_name from duckdb_tables() where schema_name = 'jaffle_shop' order by 1",
    ) == [("raw_orders",), ("raw_payments",)]
