"""Incremental dbt: after any sequence of daily loads, replays and backfills, the marts equal a
full refresh and the sums computed here in Python.

Raw tables are written per the contract straight into DuckDB (each day's rows replaced in one
transaction, as the partitioned loads do); the dbt assets and the chart run through Dagster
in-process, one run per day or per range of days.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator

import dagster as dg
import duckdb
import pytest

from jaffle_platform.definitions import defs
from jaffle_platform.defs.dbt.assets import jaffle_shop_dbt_assets
from jaffle_platform.defs.dbt.runs import FULL_REFRESH_TAG
from jaffle_platform.defs.reporting.chart import order_count_chart
from tests.conftest import Workspace
from tests.integration.daily_data import (
    DailyData,
    Marts,
    differences,
    expected_marts,
    generate_days,
    read_marts,
    write_customers,
    write_days,
)
from tests.integration.test_publish import remove_dbt_targets

START = dt.date(2018, 1, 1)
DBT_AND_CHART = dg.AssetSelection.assets(jaffle_shop_dbt_assets, order_count_chart)
DBT_ONLY = dg.AssetSelection.assets(jaffle_shop_dbt_assets)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst
        remove_dbt_targets(inst)


def run(
    instance: dg.DagsterInstance,
    days: tuple[dt.date, dt.date] | dt.date,
    selection: dg.AssetSelection = DBT_AND_CHART,
    tags: dict[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """One run for a day, or for a range of days (first and last included) as a backfill does."""
    job = defs.resolve_implicit_global_asset_job_def()
    keys = selection.resolve(defs.resolve_asset_graph())
    tags = dict(tags or {})
    if isinstance(days, tuple):
        tags["dagster/asset_partition_range_start"] = days[0].isoformat()
        tags["dagster/asset_partition_range_end"] = days[1].isoformat()
        result = job.execute_in_process(instance=instance, asset_selection=list(keys), tags=tags)
    else:
        result = job.execute_in_process(
            instance=instance, asset_selection=list(keys), tags=tags, partition_key=days.isoformat()
        )
    assert result.success
    starts = [e for e in result.all_events if e.event_type_value == "STEP_START"]
    dbt_steps = [e for e in starts if e.step_key == jaffle_shop_dbt_assets.op.name]
    assert len(dbt_steps) == 1, "one dbt build per run, whatever the range"
    return result


def full_refresh(ws: Workspace, instance: dg.DagsterInstance, day: dt.date) -> Marts:
    """The marts a full refresh builds from the same raw tables (on a copy of the warehouse)."""
    copy = ws.root / "full_refresh" / "warehouse.duckdb"
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(ws.duckdb_path, copy)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DUCKDB_PATH", str(copy))
        env.setenv("REPORTS_DIR", str(copy.parent / "reports"))
        run(instance, day, DBT_ONLY, {FULL_REFRESH_TAG: "true"})
    return read_marts(copy)


def days_between(data: DailyData, first: int, last: int) -> list[dt.date]:
    return data.days[first : last + 1]


def moved_back(data: DailyData, replayed: Iterable[dt.date], loaded: set[dt.date]) -> set[int]:
    """Orders of the replayed days whose latest state comes from a later loaded day, with
    another status: an arrival-order merge would roll them back."""
    latest = expected_marts(data, loaded, data.customers).orders
    return {
        order_id
        for day in replayed
        for order_id, _, _, status in data.orders[day]
        if latest[order_id][3] > day and latest[order_id][2] != status
    }


def late_payments(data: DailyData, days: Iterable[dt.date]) -> int:
    """Payments on these days for orders placed on an earlier day."""
    placed = {o[0]: o[2] for rows in data.orders.values() for o in rows}
    return sum(
        1 for day in days for p in data.payments[day] if p[1] in placed and placed[p[1]] < day
    )


def histogram(instance: dg.DagsterInstance) -> list[tuple[int, int]]:
    event = instance.get_latest_materialization_event(dg.AssetKey("order_count_chart"))
    assert event is not None and event.asset_materialization is not None
    table = event.asset_materialization.metadata["histogram"].value
    return [(int(a), int(b)) for a, b in re.findall(r"\| (\d+) \| (\d+) \|", str(table))]


def test_daily_loads_replays_and_backfills_give_the_marts_of_a_full_refresh(
    workspace: Workspace, instance: dg.DagsterInstance
):
    ws = workspace
    ws.duckdb_path.parent.mkdir(parents=True)
    data = generate_days(START, days=30, customers=60, orders_per_day=12, seed=7)
    # Customers 61-65 never order: kept with 0 orders, and one of them leaves the snapshot.
    customers = dict(data.customers) | {c: (f"Idle{c}", "Z.") for c in range(61, 66)}
    data.customers = customers
    write_customers(ws.duckdb_path, customers)
    loaded: set[dt.date] = set()

    def load(days: Iterable[dt.date]) -> None:
        days = list(days)
        write_days(ws.duckdb_path, data, days)
        loaded.update(days)

    def check(step: str) -> Marts:
        marts = read_marts(ws.duckdb_path)
        expected = expected_marts(data, loaded, customers)
        assert differences(marts, expected) == [], step
        return marts

    # 1. The first ten days, as one backfill run.
    load(days_between(data, 0, 9))
    run(instance, (data.days[0], data.days[9]))
    assert check("backfill of 10 days") == full_refresh(ws, instance, data.days[9])
    assert len(read_marts(ws.duckdb_path).orders) > 50

    # 2. Three daily runs, each with status changes and late payments.
    assert late_payments(data, days_between(data, 10, 12)) > 0
    for day in days_between(data, 10, 12):
        load([day])
        run(instance, day)
        check(f"daily run {day}")

    # 3. Out of order: day 14 arrives before day 13. Day 14 moves orders of day 13 on, and pays
    # some of them before their order has arrived.
    day13, day14 = data.days[13], data.days[14]
    load([day14])
    run(instance, day14)
    check("day 14 before day 13")
    load([day13])
    assert moved_back(data, [day13], loaded), "day 13 holds statuses that day 14 replaced"
    run(instance, day13)
    assert check("day 13 after day 14") == full_refresh(ws, instance, day13)

    # 4. A replay of an older day (the same file loaded again) rolls nothing back.
    replayed = data.days[4]
    rolled = moved_back(data, [replayed], loaded)
    assert rolled, "day 4 holds statuses that later days replaced"
    load([replayed])
    run(instance, replayed)
    marts = check("replay of day 4")
    # ... and a rolled-back status would have been caught:
    stale = {o[0]: o[3] for o in data.orders[replayed] if o[0] in rolled}
    broken = Marts(
        {k: (v[0], v[1], stale.get(k, v[2]), *v[3:]) for k, v in marts.orders.items()},
        marts.customers,
    )
    assert len(differences(broken, expected_marts(data, loaded, customers), 1000)) == len(rolled)

    # 5. The customer snapshot changes: a rename, a new customer, an idle one gone.
    customers[3] = ("Renamed", "R.")
    customers[66] = ("New", "N.")
    del customers[65]
    write_customers(ws.duckdb_path, customers)
    load([data.days[15]])
    run(instance, data.days[15])
    check("snapshot changed, day 15")
    names = duckdb.connect(str(ws.duckdb_path), read_only=True)
    try:
        assert names.execute(
            "select customer_id, first_name from main.customers where customer_id in (3, 65, 66)"
            " order by 1"
        ).fetchall() == [(3, "Renamed"), (66, "New")]
    finally:
        names.close()

    # 6. A backfill replaying days 2-7 as one run, then the remaining days as another.
    load(days_between(data, 2, 7))
    run(instance, (data.days[2], data.days[7]))
    check("backfill replay of days 2-7")
    load(days_between(data, 16, 29))
    run(instance, (data.days[16], data.days[29]))
    final = check("backfill of days 16-29")
    assert final == full_refresh(ws, instance, data.days[29])

    # The chart, downstream of customers, is redrawn from the whole table.
    counts = Counter(row[2] for row in final.customers.values())
    assert histogram(instance) == sorted(counts.items())


def loaded_history(
    ws: Workspace,
    instance: dg.DagsterInstance,
    days: int,
    customers: int,
    orders_per_day: int,
    seed: int,
) -> DailyData:
    """A generated history written into the raw tables and built by one range run."""
    ws.duckdb_path.parent.mkdir(parents=True)
    data = generate_days(START, days, customers, orders_per_day, seed)
    write_customers(ws.duckdb_path, data.customers)
    write_days(ws.duckdb_path, data, data.days)
    run(instance, (data.days[0], data.days[-1]))
    return data


def test_dbt_tests_check_the_window_and_the_full_run_checks_every_row(
    workspace: Workspace, instance: dg.DagsterInstance
):
    ws = workspace
    data = loaded_history(ws, instance, days=4, customers=20, orders_per_day=8, seed=3)
    # A bad status lands on day 1, outside the next run's window.
    con = duckdb.connect(str(ws.duckdb_path))
    try:
        con.execute(
            "update jaffle_shop.raw_orders set status = 'teleported' "
            "where id = (select min(id) from jaffle_shop.raw_orders) and load_day = ?",
            [data.days[0]],
        )
    finally:
        con.close()

    def failed_checks(result: dg.ExecuteInProcessResult) -> set[str]:
        return {
            e.event_specific_data.check_name  # type: ignore[union-attr]
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed  # type: ignore[union-attr]
        }

    # The day-4 run tests day 4's rows: it passes.
    assert failed_checks(run(instance, data.days[3], DBT_ONLY)) == set()
    # A full refresh tests every row: it finds the bad status.
    job = defs.resolve_implicit_global_asset_job_def()
    full = job.execute_in_process(
        instance=instance,
        asset_selection=list(DBT_ONLY.resolve(defs.resolve_asset_graph())),
        tags={FULL_REFRESH_TAG: "true"},
        partition_key=data.days[3].isoformat(),
        raise_on_error=False,
    )
    assert not full.success
    assert "accepted_values_stg_orders_status___var_order_statuses_" in failed_checks(full)


def test_weekly_full_tests_run_every_test_on_every_row(
    workspace: Workspace, instance: dg.DagsterInstance
):
    ws = workspace
    loaded_history(ws, instance, days=3, customers=20, orders_per_day=8, seed=5)
    before = read_marts(ws.duckdb_path)
    con = duckdb.connect(str(ws.duckdb_path))
    try:
        # A duplicate payment id across two days: no single day's test can see it.
        con.execute(
            "update jaffle_shop.raw_payments "
            "set id = (select min(id) from jaffle_shop.raw_payments) "
            "where id = (select max(id) from jaffle_shop.raw_payments)"
        )
    finally:
        con.close()

    job = defs.resolve_job_def("dbt_full_tests")
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    evaluations = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    failed = {e.check_name for e in evaluations if not e.passed}  # type: ignore[union-attr]
    assert failed == {"unique_stg_payments_payment_id"}
    assert len(evaluations) == len(list(jaffle_shop_dbt_assets.check_keys))
    assert not [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    assert read_marts(ws.duckdb_path) == before, "the full tests build nothing"


def test_customer_tests_check_the_customers_of_the_window(
    workspace: Workspace, instance: dg.DagsterInstance
):
    """The tests of the customer tables (no load day) check the customers with an order row in
    the run's window; the weekly full tests check every customer."""
    ws = workspace
    data = loaded_history(ws, instance, days=3, customers=30, orders_per_day=6, seed=11)
    in_window = {user_id for _, user_id, _, _ in data.orders[data.days[2]]}
    outside = sorted(set(data.customers) - in_window)
    assert len(in_window) > 1 and outside
    gone = max(in_window)
    rows_of_gone = {
        day: sum(user_id == gone for _, user_id, _, _ in data.orders[day]) for day in data.days
    }
    # One customer of the window and one outside it appear twice in the snapshot; another
    # customer of the window is gone from it, leaving their order rows without a parent.
    con = duckdb.connect(str(ws.duckdb_path))
    try:
        for customer in (min(in_window), outside[0]):
            con.execute(
                "insert into jaffle_shop.raw_customers select * from jaffle_shop.raw_customers "
                "where id = ?",
                [customer],
            )
        con.execute("delete from jaffle_shop.raw_customers where id = ?", [gone])
    finally:
        con.close()
    orphans = "relationships_stg_orders_customer_id__customer_id__ref_stg_customers_"

    def failed_rows(result: dg.ExecuteInProcessResult) -> dict[str, int]:
        evaluations = [
            e.event_specific_data
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        return {
            e.check_name: e.metadata["dagster_dbt/failed_row_count"].value  # type: ignore[union-attr]
            for e in evaluations
            if not e.passed  # type: ignore[union-attr]
        }

    day = run_allowing_failure(instance, data.days[2])
    assert failed_rows(day)["unique_stg_customers_customer_id"] == 1
    assert failed_rows(day)[orphans] == rows_of_gone[data.days[2]]
    weekly = defs.resolve_job_def("dbt_full_tests").execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert failed_rows(weekly)["unique_stg_customers_customer_id"] == 2
    assert failed_rows(weekly)[orphans] == sum(rows_of_gone.values()) > rows_of_gone[data.days[2]]


def run_allowing_failure(instance: dg.DagsterInstance, day: dt.date) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance,
        asset_selection=list(DBT_ONLY.resolve(defs.resolve_asset_graph())),
        partition_key=day.isoformat(),
        raise_on_error=False,
    )
