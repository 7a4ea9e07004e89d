"""Daily raw data in the loads/dbt contract, written straight into DuckDB, and the marts it must
give, computed in plain Python.

The contract (user_code/jaffle_platform/partitions.py): jaffle_shop.raw_orders and raw_payments
carry `load_day`, the day of the file a row came from; all days' rows are kept. An order appears
again on a later day when its status changes (the latest day's row wins); payments are
append-only and may belong to an order of an earlier day. raw_customers is a full snapshot.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

from jaffle_platform.defs.ingest.contract import PAYMENT_METHODS

# A status change moves an order one step along this path.
NEXT_STATUS = {"placed": "shipped", "shipped": "completed", "completed": "return_pending",
               "return_pending": "returned"}  # fmt: skip

Order = tuple[int, int, dt.date, str]  # id, user_id, order_date, status
Payment = tuple[int, int, str, int]  # id, order_id, payment_method, amount in cents


@dataclass
class DailyData:
    """Each day's files: the orders sent that day and that day's payments."""

    days: list[dt.date]
    customers: dict[int, tuple[str, str]]  # the snapshot: id -> (first_name, last_name)
    orders: dict[dt.date, list[Order]] = field(default_factory=dict)
    payments: dict[dt.date, list[Payment]] = field(default_factory=dict)


def generate_days(
    start: dt.date, days: int, customers: int, orders_per_day: int, seed: int
) -> DailyData:
    """Days of new orders, status changes of earlier orders, same-day and late payments.

    Some orders move to another customer on a later day, and some payments come on a later day
    than their order: both are in the contract, both must reach the marts.
    """
    rng = random.Random(seed)
    data = DailyData(
        days=[start + dt.timedelta(days=i) for i in range(days)],
        customers={c: (f"First{c}", f"{chr(65 + c % 26)}.") for c in range(1, customers + 1)},
    )
    state: dict[int, Order] = {}
    next_order, next_payment = 1, 1
    for day in data.days:
        sent: dict[int, Order] = {}
        paid: list[Payment] = []
        # status changes (and the odd change of customer) of orders from earlier days
        for order_id in rng.sample(sorted(state), min(len(state), orders_per_day // 2)):
            oid, user, order_date, status = state[order_id]
            if status in NEXT_STATUS:
                if rng.random() < 0.05:
                    user = rng.randint(1, customers)
                sent[oid] = (oid, user, order_date, NEXT_STATUS[status])
        for _ in range(rng.randint(orders_per_day // 2, orders_per_day)):
            order = (next_order, rng.randint(1, customers), day, "placed")
            sent[next_order] = order
            next_order += 1
            # most orders are paid the day they are placed, in one or two payments
            for _ in range(rng.choice((0, 1, 1, 2))):
                paid.append(
                    (next_payment, order[0], rng.choice(PAYMENT_METHODS), rng.randint(100, 5000))
                )
                next_payment += 1
        # late payments for orders of earlier days
        for order_id in rng.sample(sorted(state), min(len(state), orders_per_day // 4)):
            paid.append(
                (next_payment, order_id, rng.choice(PAYMENT_METHODS), rng.randint(100, 5000))
            )
            next_payment += 1
        state.update(sent)
        data.orders[day] = sorted(sent.values())
        data.payments[day] = paid
    return data


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists jaffle_shop")
    con.execute(
        "create table if not exists jaffle_shop.raw_customers "
        "(id bigint, first_name varchar, last_name varchar)"
    )
    con.execute(
        "create table if not exists jaffle_shop.raw_orders "
        "(id bigint, user_id bigint, order_date date, status varchar, load_day date)"
    )
    con.execute(
        "create table if not exists jaffle_shop.raw_payments "
        "(id bigint, order_id bigint, payment_method varchar, amount bigint, load_day date)"
    )


def write_customers(path: Path, customers: dict[int, tuple[str, str]]) -> None:
    """Replaces the customer snapshot, as the raw_customers load does."""
    con = duckdb.connect(str(path))
    try:
        create_raw_tables(con)
        con.execute("begin")
        con.execute("delete from jaffle_shop.raw_customers")
        con.executemany(
            "insert into jaffle_shop.raw_customers values (?, ?, ?)",
            [(c, first, last) for c, (first, last) in sorted(customers.items())],
        )
        con.execute("commit")
    finally:
        con.close()


def write_days(path: Path, data: DailyData, days: Iterable[dt.date]) -> None:
    """Loads each day as the partitioned loads do: that day's rows replaced in one transaction."""
    con = duckdb.connect(str(path))
    try:
        create_raw_tables(con)
        for day in days:
            con.execute("begin")
            for table in ("raw_orders", "raw_payments"):
                con.execute(f"delete from jaffle_shop.{table} where load_day = ?", [day])
            if data.orders[day]:
                con.executemany(
                    "insert into jaffle_shop.raw_orders values (?, ?, ?, ?, ?)",
                    [(*o, day) for o in data.orders[day]],
                )
            if data.payments[day]:
                con.executemany(
                    "insert into jaffle_shop.raw_payments values (?, ?, ?, ?, ?)",
                    [(*p, day) for p in data.payments[day]],
                )
            con.execute("commit")
    finally:
        con.close()


@dataclass(frozen=True)
class Marts:
    """orders: id -> (customer, order_date, status, load_day, amounts by method..., amount);
    customers: id -> (first_order, most_recent_order, number_of_orders, lifetime_value)."""

    orders: dict[int, tuple]
    customers: dict[int, tuple]


def expected_marts(
    data: DailyData, loaded: Iterable[dt.date], customers: dict[int, tuple[str, str]]
) -> Marts:
    """The marts from the loaded days alone, whatever order they were loaded in."""
    latest: dict[int, tuple[dt.date, Order]] = {}
    cents: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(PAYMENT_METHODS, 0))
    for day in set(loaded):
        for order in data.orders[day]:
            if order[0] not in latest or latest[order[0]][0] < day:
                latest[order[0]] = (day, order)
        for _, order_id, method, amount in data.payments[day]:
            cents[order_id][method] += amount
    orders = {}
    for order_id, (day, (_, user, order_date, status)) in latest.items():
        by_method = [Decimal(cents[order_id][m]) / 100 for m in PAYMENT_METHODS]
        orders[order_id] = (user, order_date, status, day, *by_method, sum(by_method, Decimal(0)))
    per_customer: dict[int, list[tuple]] = defaultdict(list)
    for row in orders.values():
        per_customer[row[0]].append(row)
    result = {}
    for customer in customers:
        rows = per_customer.get(customer, [])
        dates = [r[1] for r in rows]
        result[customer] = (
            min(dates, default=None),
            max(dates, default=None),
            len(rows),
            sum((r[-1] for r in rows), Decimal(0)),
        )
    return Marts(orders, result)


ORDERS_SQL = f"""
select order_id, customer_id, order_date, status, load_day,
    {", ".join(f"{m}_amount" for m in PAYMENT_METHODS)}, amount
from main.orders order by order_id
"""
CUSTOMERS_SQL = """
select customer_id, first_order, most_recent_order, number_of_orders, customer_lifetime_value
from main.customers order by customer_id
"""


def read_marts(path: Path) -> Marts:
    con = duckdb.connect(str(path), read_only=True)
    try:
        orders = {row[0]: tuple(row[1:]) for row in con.execute(ORDERS_SQL).fetchall()}
        customers = {row[0]: tuple(row[1:]) for row in con.execute(CUSTOMERS_SQL).fetchall()}
    finally:
        con.close()
    return Marts(orders, customers)


def differences(actual: Marts, expected: Marts, limit: int = 5) -> list[str]:
    """What differs, order by order and customer by customer (empty when the marts agree)."""
    found = []
    for name in ("orders", "customers"):
        a, e = getattr(actual, name), getattr(expected, name)
        for key in sorted(set(a) | set(e)):
            if a.get(key) != e.get(key):
                found.append(f"{name} {key}: got {a.get(key)}, expected {e.get(key)}")
    return found[:limit] + ([f"... {len(found) - limit} more"] if len(found) > limit else [])
