"""Deterministic jaffle shop data at any scale: `jaffle-generate --customers N --seed S --out DIR`.

Writes raw_customers.csv, raw_orders.csv and raw_payments.csv in the classic schema. The same
arguments give byte-identical files. About one customer in seven never orders.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from jaffle_platform.defs.ingest.contract import ORDER_STATUSES, PAYMENT_METHODS

FIRST_NAMES = (
    "Michael",
    "Shawn",
    "Kathleen",
    "Jimmy",
    "Katherine",
    "Sarah",
    "Martin",
    "Frank",
    "Jennifer",
    "Henry",
    "Fred",
    "Amy",
    "Kathleen",
    "Steve",
    "Teresa",
    "Amanda",
    "Kimberly",
    "Johnny",
    "Virginia",
    "Anna",
    "Willie",
    "Sean",
    "Mildred",
    "David",
    "Victor",
    "Aaron",
    "Donna",
    "Jessica",
    "Elizabeth",
    "Laura",
    "Harold",
    "Emily",
    "Howard",
    "Ann",
    "Rose",
    "Louise",
    "Gloria",
    "Wanda",
    "Julia",
    "Gerald",
)
LAST_INITIALS = tuple(f"{c}." for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Shares in the contract's order (ORDER_STATUSES, PAYMENT_METHODS): mostly completed orders,
# mostly card payments.
STATUS_WEIGHTS = (0.10, 0.10, 0.65, 0.05, 0.10)
METHOD_WEIGHTS = (0.45, 0.20, 0.20, 0.15)
NEVER_ORDER_SHARE = 1 / 7
SECOND_PAYMENT_SHARE = 0.15
FIRST_DATE = np.datetime64("2018-01-01")
# Seven years at most (to 2024-12-30): inside the contract's default date range for years to come.
MAX_SPAN_DAYS = 7 * 365


@dataclass(frozen=True)
class Counts:
    customers: int
    orders: int
    payments: int


def generate(out: Path, customers: int, orders: int | None = None, seed: int = 42) -> Counts:
    """Write the three CSVs to `out`; `orders` defaults to one per customer on average."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    orders = customers if orders is None else orders
    if orders < 0:
        raise ValueError("orders must not be negative")
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)

    customer_ids = np.arange(1, customers + 1, dtype=np.int64)
    first = np.asarray(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), customers)]
    last = np.asarray(LAST_INITIALS)[rng.integers(0, len(LAST_INITIALS), customers)]
    customers_df = pd.DataFrame({"id": customer_ids, "first_name": first, "last_name": last})

    orders_per_customer_pool = customer_ids[rng.random(customers) >= NEVER_ORDER_SHARE]
    if orders_per_customer_pool.size == 0:
        orders_per_customer_pool = customer_ids[:1]
    span_days = max(90, min(MAX_SPAN_DAYS, orders // 10))
    order_dates = FIRST_DATE + np.sort(rng.integers(0, span_days, orders)).astype("timedelta64[D]")
    orders_df = pd.DataFrame(
        {
            "id": np.arange(1, orders + 1, dtype=np.int64),
            "user_id": rng.choice(orders_per_customer_pool, orders),
            "order_date": order_dates,
            "status": np.asarray(ORDER_STATUSES)[
                rng.choice(len(ORDER_STATUSES), orders, p=STATUS_WEIGHTS)
            ],
        }
    )

    order_ids = np.arange(1, orders + 1, dtype=np.int64)
    second = order_ids[rng.random(orders) < SECOND_PAYMENT_SHARE]
    pay_order_ids = np.sort(np.concatenate([order_ids, second]), kind="stable")
    n_payments = pay_order_ids.size
    payments_df = pd.DataFrame(
        {
            "id": np.arange(1, n_payments + 1, dtype=np.int64),
            "order_id": pay_order_ids,
            "payment_method": np.asarray(PAYMENT_METHODS)[
                rng.choice(len(PAYMENT_METHODS), n_payments, p=METHOD_WEIGHTS)
            ],
            "amount": rng.integers(0, 31, n_payments, dtype=np.int64) * 100,
        }
    )

    con = duckdb.connect()
    try:
        for name, frame, select in (
            ("raw_customers", customers_df, "*"),
            ("raw_orders", orders_df, "* replace (order_date::date as order_date)"),
            ("raw_payments", payments_df, "*"),
        ):
            con.register("frame", frame)
            path = str(out / f"{name}.csv").replace("'", "''")
            con.execute(
                f"copy (select {select} from frame) to '{path}' "
                "(header, delimiter ',', dateformat '%Y-%m-%d')"
            )
            con.unregister("frame")
    finally:
        con.close()
    return Counts(customers=customers, orders=orders, payments=n_payments)


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(prog="jaffle-generate", description=summary)
    parser.add_argument("--customers", type=int, required=True, help="number of customers")
    parser.add_argument(
        "--orders", type=int, default=None, help="number of orders (default: as many as customers)"
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the CSVs to")
    args = parser.parse_args(argv)
    try:
        counts = generate(args.out, args.customers, args.orders, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    print(
        f"wrote {counts.customers} customers, {counts.orders} orders, "
        f"{counts.payments} payments to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
