"""The jaffle shop marts recomputed from the raw CSVs in plain Python, to check dbt against.

The raw folder has the daily layout: `raw_customers.csv`, `raw_orders/YYYY-MM-DD.csv` (for each
order id, the row of the latest day wins), `raw_payments/YYYY-MM-DD.csv` (every payment).
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

from jaffle_platform.defs.ingest.contract import PAYMENT_METHODS


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def read_days(raw_dir: Path, table: str) -> list[dict[str, str]]:
    """Every row of the table's day files, each with its file's day as `load_day`, by day."""
    rows = []
    for path in sorted((raw_dir / table).glob("*.csv")):
        rows += [{**row, "load_day": path.stem} for row in read(path)]
    return rows


def latest_orders(raw_dir: Path) -> list[dict[str, str]]:
    """One row per order: the one from the latest day's file."""
    latest: dict[str, dict[str, str]] = {}
    for row in read_days(raw_dir, "raw_orders"):
        latest[row["id"]] = row
    return list(latest.values())


def expected_customers(raw_dir: Path) -> dict[int, tuple]:
    """customer_id -> (first_order, most_recent_order, number_of_orders, lifetime value)."""
    orders = latest_orders(raw_dir)
    payments = read_days(raw_dir, "raw_payments")
    order_owner = {int(o["id"]): int(o["user_id"]) for o in orders}
    dates: dict[int, list[str]] = defaultdict(list)
    for o in orders:
        dates[int(o["user_id"])].append(o["order_date"])
    cents: Counter[int] = Counter()
    for p in payments:
        cents[order_owner[int(p["order_id"])]] += int(p["amount"])
    result = {}
    for c in read(raw_dir / "raw_customers.csv"):
        cid = int(c["id"])
        d = dates.get(cid, [])
        result[cid] = (
            min(d) if d else None,
            max(d) if d else None,
            len(d),
            Decimal(cents[cid]) / 100,
        )
    return result


def expected_order_amounts(raw_dir: Path) -> dict[int, dict[str, Decimal]]:
    """order_id -> amount per payment method and in total, in dollars."""
    methods = PAYMENT_METHODS
    result = {
        int(o["id"]): {m: Decimal(0) for m in (*methods, "amount")} for o in latest_orders(raw_dir)
    }
    for p in read_days(raw_dir, "raw_payments"):
        dollars = Decimal(int(p["amount"])) / 100
        result[int(p["order_id"])][p["payment_method"]] += dollars
        result[int(p["order_id"])]["amount"] += dollars
    return result


def expected_histogram(raw_dir: Path) -> list[tuple[int, int]]:
    counts = Counter(n for _, _, n, _ in expected_customers(raw_dir).values())
    return sorted(counts.items())
