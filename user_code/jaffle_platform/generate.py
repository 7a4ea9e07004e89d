"""Deterministic jaffle shop data in the daily layout, at any scale.

`jaffle-generate --customers N --out DIR` writes the classic data set (one order per customer on
average, one status per order) split into days; `jaffle-generate --days D --orders-per-day K
--out DIR` streams D days of K new orders each, with status changes repeated on later days and
late payments for earlier days' orders, in bounded memory (10^8 orders are reachable).

Layout (the one RAW_DATA_URI and the landing folder use): `raw_customers.csv` (every customer),
`raw_orders/YYYY-MM-DD.csv` (the orders created or changed that day), `raw_payments/YYYY-MM-DD.csv`
(that day's payments). The same arguments give byte-identical files. About one customer in seven
never orders.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

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


# Daily generator: orders change status within this many days of their creation, and late
# payments are for orders of the same past days.
LOOKBACK_DAYS = 30
STATUS_CHANGE_SHARE = 0.10
LATE_PAYMENT_SHARE = 0.05
# Customers are written in chunks of this many rows, so 10^7 customers stay in bounded memory.
CHUNK_ROWS = 1_000_000


@dataclass(frozen=True)
class Counts:
    customers: int
    orders: int
    payments: int
    days: int = 0
    status_changes: int = 0
    late_payments: int = 0


def orders_path(out: Path, day: dt.date) -> Path:
    return out / "raw_orders" / f"{day.isoformat()}.csv"


def payments_path(out: Path, day: dt.date) -> Path:
    return out / "raw_payments" / f"{day.isoformat()}.csv"


def _write_csv(path: Path, frame: pd.DataFrame, *, header: bool = True, mode: str = "w") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, header=header, mode=mode, lineterminator="\n")


def _clear_days(out: Path) -> None:
    """Remove the day files of an earlier run, so the folder holds this data set only."""
    for folder in ("raw_orders", "raw_payments"):
        for old in (out / folder).glob("*.csv"):
            old.unlink()


def generate(out: Path, customers: int, orders: int | None = None, seed: int = 42) -> Counts:
    """The classic data set, in the daily layout: each order in the file of its order_date, each
    payment in its order's day; `orders` defaults to one per customer on average."""
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
            "order_date": np.datetime_as_string(order_dates, unit="D"),
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

    _write_csv(out / "raw_customers.csv", customers_df)
    _clear_days(out)
    # Orders are sorted by date and paid in order id order: each day is one contiguous slice.
    pay_dates = orders_df["order_date"].to_numpy()[pay_order_ids - 1]
    for frame, dates, path in (
        (orders_df, orders_df["order_date"].to_numpy(), orders_path),
        (payments_df, pay_dates, payments_path),
    ):
        days, starts = np.unique(dates, return_index=True)
        ends = [*starts[1:], len(frame)]
        for day, begin, end in zip(days, starts, ends, strict=True):
            _write_csv(path(out, dt.date.fromisoformat(str(day))), frame.iloc[begin:end])
    n_days = len(np.unique(orders_df["order_date"].to_numpy()))
    return Counts(customers=customers, orders=orders, payments=n_payments, days=n_days)


def _mix(values: np.ndarray, salt: int) -> np.ndarray:
    """A fixed pseudo-random uint64 for each value (splitmix64): an order's owner and first status
    follow from its id, so a status change days later repeats them without keeping every order."""
    z = values.astype(np.uint64) + np.uint64(salt * 0x9E3779B97F4A7C15 % 2**64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _uniform(values: np.ndarray, salt: int) -> np.ndarray:
    return (_mix(values, salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def generate_days(
    out: Path,
    days: int,
    orders_per_day: int,
    customers: int | None = None,
    seed: int = 42,
    start: dt.date = dt.date(2018, 1, 1),
) -> Counts:
    """Stream `days` days of `orders_per_day` new orders each, one day in memory at a time.

    Each day after the first also repeats about 10 % as many orders of the previous 30 days with
    a new status (same id, owner and order_date), and pays about 5 % as many of them late. Order
    and payment ids grow with the days; `customers` defaults to one for every ten orders.
    """
    if days < 1 or orders_per_day < 1:
        raise ValueError("days and orders_per_day must be at least 1")
    total = days * orders_per_day
    customers = max(1, total // 10) if customers is None else customers
    if customers < 1:
        raise ValueError("customers must be at least 1")
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    _clear_days(out)

    path = out / "raw_customers.csv"
    for begin in range(0, customers, CHUNK_ROWS):
        ids = np.arange(begin + 1, min(customers, begin + CHUNK_ROWS) + 1, dtype=np.int64)
        first = np.asarray(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), ids.size)]
        last = np.asarray(LAST_INITIALS)[rng.integers(0, len(LAST_INITIALS), ids.size)]
        frame = pd.DataFrame({"id": ids, "first_name": first, "last_name": last})
        _write_csv(path, frame, header=begin == 0, mode="w" if begin == 0 else "a")

    # Customers with the highest ids never order (about one in seven).
    buyers = max(1, customers - round(customers * NEVER_ORDER_SHARE))
    cumulative = np.cumsum(STATUS_WEIGHTS)
    statuses = np.asarray(ORDER_STATUSES)
    k = orders_per_day
    next_payment = 1
    changes = late = payments = 0
    for d in range(days):
        day = start + dt.timedelta(days=d)
        first_recent = max(0, d - LOOKBACK_DAYS) * k + 1
        recent = d * k - first_recent + 1  # orders of the previous LOOKBACK_DAYS days
        new_ids = np.arange(d * k + 1, (d + 1) * k + 1, dtype=np.int64)
        n_changed = min(recent, round(STATUS_CHANGE_SHARE * k)) if d else 0
        changed = np.sort(rng.choice(recent, n_changed, replace=False)) + first_recent
        ids = np.concatenate([changed.astype(np.int64), new_ids])
        first_status = np.minimum(
            np.searchsorted(cumulative, _uniform(ids, seed * 4 + 1), side="right"),
            len(statuses) - 1,
        )
        step = (_mix(changed, seed * 4 + 2 + d) % np.uint64(len(statuses) - 1)).astype(np.int64)
        status = first_status.copy()
        status[:n_changed] = (first_status[:n_changed] + 1 + step) % len(statuses)
        order_days = np.datetime64(start) + ((ids - 1) // k).astype("timedelta64[D]")
        _write_csv(
            orders_path(out, day),
            pd.DataFrame(
                {
                    "id": ids,
                    "user_id": (_mix(ids, seed * 4 + 3) % np.uint64(buyers)).astype(np.int64) + 1,
                    "order_date": np.datetime_as_string(order_days, unit="D"),
                    "status": statuses[status],
                }
            ),
        )

        n_late = min(recent, round(LATE_PAYMENT_SHARE * k)) if d else 0
        late_orders = np.sort(rng.choice(recent, n_late, replace=False)) + first_recent
        second = new_ids[rng.random(k) < SECOND_PAYMENT_SHARE]
        paid = np.concatenate(
            [late_orders.astype(np.int64), np.sort(np.concatenate([new_ids, second]))]
        )
        n = paid.size
        _write_csv(
            payments_path(out, day),
            pd.DataFrame(
                {
                    "id": np.arange(next_payment, next_payment + n, dtype=np.int64),
                    "order_id": paid,
                    "payment_method": np.asarray(PAYMENT_METHODS)[
                        rng.choice(len(PAYMENT_METHODS), n, p=METHOD_WEIGHTS)
                    ],
                    "amount": rng.integers(0, 31, n, dtype=np.int64) * 100,
                }
            ),
        )
        next_payment += n
        changes += n_changed
        late += n_late
        payments += n
    return Counts(
        customers=customers,
        orders=total,
        payments=payments,
        days=days,
        status_changes=changes,
        late_payments=late,
    )


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(prog="jaffle-generate", description=summary)
    parser.add_argument(
        "--customers",
        type=int,
        default=None,
        help="number of customers (required without --days; with --days: one per ten orders)",
    )
    parser.add_argument(
        "--orders",
        type=int,
        default=None,
        help="classic data set: number of orders (default: as many as customers)",
    )
    parser.add_argument("--days", type=int, default=None, help="stream this many days of orders")
    parser.add_argument(
        "--orders-per-day", type=int, default=1000, help="new orders a day with --days (1000)"
    )
    parser.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        default=dt.date(2018, 1, 1),
        help="first day with --days (2018-01-01)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the CSVs to")
    args = parser.parse_args(argv)
    try:
        if args.days is not None:
            if args.orders is not None:
                parser.error("--orders is for the classic data set; use --orders-per-day")
            counts = generate_days(
                args.out, args.days, args.orders_per_day, args.customers, args.seed, args.start
            )
        elif args.customers is None:
            parser.error("give --customers (classic data set) or --days")
        else:
            counts = generate(args.out, args.customers, args.orders, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    print(
        f"wrote {counts.customers} customers, {counts.orders} orders "
        f"({counts.status_changes} status changes), {counts.payments} payments "
        f"({counts.late_payments} late) over {counts.days} days to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
