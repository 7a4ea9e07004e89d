"""The one-day incremental dbt run against a full refresh, on a history made in DuckDB.

A history of --orders orders over --days days (as many days' files, in the loads/dbt contract:
raw_orders with a second row for 30 % of orders whose status changed a few days later,
raw_payments with one payment per order and late payments for 20 % of orders, --orders / 10
customers) is written straight into a DuckDB file, no CSV. Then:

1. `dbt build` (first build of the whole history),
2. one more day arrives (1 % of the history's orders, plus status changes and late payments of
   earlier orders), and `dbt build --vars {min_day, max_day} --exclude resource_type:unit_test`
   runs for that day, as the platform's run for that day does,
3. `dbt build --full-refresh` on the same tables,

each as one dbt process, timed from outside (wall, dbt's start-up included) and per node from
its run_results.json. The incremental marts are compared with the full refresh's. Then the same
one-day run through Dagster, in-process (the dbt assets, the chart and the warehouse snapshot
for the new day's partition), with each step's time. Figures are printed, nothing is asserted
but the equality.

    uv run --frozen python bench/incremental_dbt_bench.py [--orders 1000000] [--days 100]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from jaffle_platform import settings
from jaffle_platform.defs.dbt.runs import LoadWindow, dbt_build_args

BIN = Path(sys.executable).parent
START = dt.date(2018, 1, 1)


def make_history(path: Path, orders: int, days: int) -> dt.date:
    """Writes the raw tables for `days` days of `orders` orders; returns the next day."""
    per_day = orders // days
    customers = max(orders // 10, 1)
    last = START + dt.timedelta(days=days - 1)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema jaffle_shop")
        con.execute(
            f"""create table jaffle_shop.raw_customers as
            select i as id, 'First' || i as first_name, 'L.' as last_name
            from range(1, {customers} + 1) t(i)"""
        )
        con.execute(
            f"""create table jaffle_shop.raw_orders as
            with placed as (
                select i as id, (1 + hash(i) % {customers})::bigint as user_id,
                    date '{START}' + ((i - 1) // {per_day})::int as order_date
                from range(1, {orders} + 1) t(i)
            ),
            rows as (
                select id, user_id, order_date, 'placed' as status, order_date as load_day
                from placed
                union all
                select id, user_id, order_date, 'shipped',
                    order_date + 1 + (hash(id * 7) % 3)::int
                from placed
                where hash(id * 3) % 10 < 3
            )
            select * from rows where load_day <= date '{last}' order by load_day, id"""
        )
        con.execute(
            f"""create table jaffle_shop.raw_payments as
            with paid as (
                select id as order_id, order_date as load_day, 1 as n from jaffle_shop.raw_orders
                where status = 'placed'
                union all
                select id, order_date + 1 + (hash(id * 11) % 20)::int, 2
                from jaffle_shop.raw_orders
                where status = 'placed' and hash(id * 5) % 10 < 2
            )
            select row_number() over (order by load_day, order_id, n) as id, order_id,
                ['credit_card', 'coupon', 'bank_transfer', 'gift_card']
                    [(1 + hash(order_id + n) % 4)::bigint] as payment_method,
                (100 + hash(order_id * n) % 5000)::bigint as amount, load_day
            from paid where load_day <= date '{last}' order by load_day, order_id"""
        )
    finally:
        con.close()
    return last + dt.timedelta(days=1)


def add_day(path: Path, day: dt.date, orders: int) -> dict[str, int]:
    """One more day's files: new orders with their payments, status changes of orders from the
    days before, late payments of older orders."""
    con = duckdb.connect(str(path))
    try:
        (max_order,) = con.execute("select max(id) from jaffle_shop.raw_orders").fetchone()  # type: ignore[misc]
        (max_payment,) = con.execute("select max(id) from jaffle_shop.raw_payments").fetchone()  # type: ignore[misc]
        (customers,) = con.execute("select count(*) from jaffle_shop.raw_customers").fetchone()  # type: ignore[misc]
        con.execute("begin")
        con.execute(
            f"""insert into jaffle_shop.raw_orders
            select {max_order} + i, (1 + hash(i * 13) % {customers})::bigint, date '{day}',
                'placed', date '{day}'
            from range(1, {orders} + 1) t(i)
            union all
            select id, user_id, order_date, 'completed', date '{day}'
            from jaffle_shop.raw_orders
            where load_day = date '{day}' - 2 and status = 'placed' and hash(id) % 2 = 0"""
        )
        con.execute(
            f"""insert into jaffle_shop.raw_payments
            select {max_payment} + row_number() over (order by order_id), order_id,
                'coupon', 500, date '{day}'
            from (
                select id as order_id from jaffle_shop.raw_orders
                where load_day = date '{day}' and status = 'placed'
                union all
                select id from jaffle_shop.raw_orders
                where status = 'placed' and hash(id * 17) % {max(max_order // (orders // 4), 1)} = 0
                    and load_day < date '{day}'
            )"""
        )
        con.execute("commit")
        counts = dict(
            con.execute(
                "select 'raw_orders', count(*) from jaffle_shop.raw_orders union all "
                "select 'raw_payments', count(*) from jaffle_shop.raw_payments union all "
                f"select 'day orders rows', count(*) from jaffle_shop.raw_orders "
                f"where load_day = date '{day}' union all "
                f"select 'day payments', count(*) from jaffle_shop.raw_payments "
                f"where load_day = date '{day}'"
            ).fetchall()
        )
    finally:
        con.close()
    return counts


def dbt(project: Path, warehouse: Path, target: Path, *args: str) -> tuple[float, dict]:
    """One dbt build; its wall time and run_results.json.

    One target dir for every build, as in the platform (dagster-dbt hands each run the last
    partial parse): dbt re-parses only when the vars change, which a new day's run does.
    """
    started = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "dbt"), "build", *args, "--project-dir", str(project),
         "--profiles-dir", str(project), "--target-path", str(target), "--log-path", str(target)],
        env={**os.environ, "DUCKDB_PATH": str(warehouse)},
        capture_output=True,
        text=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-4000:])
    return wall, json.loads((target / "run_results.json").read_text())


def per_node(results: dict) -> dict[str, float]:
    return {r["unique_id"]: r["execution_time"] for r in results["results"]}


def marts(path: Path) -> tuple[list, list]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return (
            con.execute("select * from main.orders order by order_id").fetchall(),
            con.execute("select * from main.customers order by customer_id").fetchall(),
        )
    finally:
        con.close()


def dagster_one_day(root: Path, warehouse: Path, day: dt.date) -> None:
    """The one-day run as the platform launches it, in-process; prints each step's time."""
    os.environ.update(
        DUCKDB_PATH=str(warehouse),
        REPORTS_DIR=str(root / "reports"),
        SNAPSHOT_DIR=str(root / "snapshot"),
    )
    started = time.perf_counter()
    import dagster as dg

    from jaffle_platform.definitions import defs

    imported = time.perf_counter() - started
    graph = defs.resolve_asset_graph()
    keys = dg.AssetSelection.from_string(
        "key:stg_customers+ or key:stg_orders+ or key:stg_payments+"
    ).resolve(graph)
    with dg.DagsterInstance.ephemeral() as instance:
        run_started = time.perf_counter()
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=list(keys), partition_key=day.isoformat()
        )
        run_wall = time.perf_counter() - run_started
        assert result.success
        for left in (settings.dbt_project_dir() / "target").glob(
            f"jaffle_shop_dbt_assets-{result.run_id[:7]}-*"
        ):
            shutil.rmtree(left, ignore_errors=True)
        steps: dict[str, list[float]] = {}
        for event in instance.all_logs(result.run_id):
            kind = event.dagster_event_type
            if event.step_key and kind is not None and kind.value in ("STEP_START", "STEP_SUCCESS"):
                steps.setdefault(event.step_key, []).append(event.timestamp)
    print(f"\nDagster, in-process, partition {day}: import of the definitions {imported:.1f} s, "
          f"run {run_wall:.1f} s wall")  # fmt: skip
    for step, (start, end) in steps.items():
        print(f"  {step}: {end - start:.2f} s")
    size = (root / "snapshot" / "warehouse.duckdb").stat().st_size
    print(f"  (warehouse snapshot: {size / 1e6:.0f} MB copied)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="incremental-bench-") as tmp:
        root = Path(tmp)
        project = root / "dbt_project"
        shutil.copytree(
            settings.dbt_project_dir(), project, ignore=shutil.ignore_patterns("target", "logs")
        )
        warehouse = root / "bench.duckdb"
        started = time.perf_counter()
        day = make_history(warehouse, args.orders, args.days)
        print(f"history of {args.orders:,} orders in {args.days} days: "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip

        first_wall, _ = dbt(project, warehouse, root / "target")
        print(f"first build of the history: {first_wall:.1f} s wall")
        counts = add_day(warehouse, day, args.orders // args.days)
        print("after the new day:", counts)

        before_day = root / "dagster.duckdb"
        shutil.copyfile(warehouse, before_day)
        # The arguments the platform's run for that day passes (after "build").
        window = LoadWindow(day, day + dt.timedelta(days=1))
        day_args = dbt_build_args(window, full_refresh=False)[1:]
        day_wall, day_results = dbt(project, warehouse, root / "target", *day_args)
        one_day = marts(warehouse)

        full_copy = root / "full.duckdb"
        shutil.copyfile(warehouse, full_copy)
        full_wall, full_results = dbt(project, full_copy, root / "target", "--full-refresh")
        assert marts(full_copy) == one_day, "the one-day run and the full refresh differ"

        day_nodes, full_nodes = per_node(day_results), per_node(full_results)
        print("\n| node | one day (s) | full refresh (s) |\n|---|---:|---:|")
        for node in sorted(full_nodes, key=lambda n: -full_nodes[n]):
            if (
                full_nodes[node] >= 0.05
                or day_nodes.get(node, 0) >= 0.05
                or ".model." in f".{node}"
            ):
                print(f"| {node} | {day_nodes.get(node, 0):.2f} | {full_nodes[node]:.2f} |")
        day_sum, full_sum = sum(day_nodes.values()), sum(full_nodes.values())
        print(f"| sum of nodes | {day_sum:.2f} | {full_sum:.2f} |")
        print(f"| dbt build, wall (start-up included) | {day_wall:.2f} | {full_wall:.2f} |")
        print(
            f"\none day / full refresh: nodes {day_sum / full_sum:.0%}, "
            f"wall {day_wall / full_wall:.0%}"
        )
        print("marts of the one-day run == marts of the full refresh")
        dagster_one_day(root, before_day, day)
        assert marts(before_day) == one_day, "Dagster's one-day run and dbt's differ"


if __name__ == "__main__":
    main()
