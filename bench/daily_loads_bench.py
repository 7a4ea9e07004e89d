"""The daily raw loads: one transaction for a range of days against one a day, and the cost of
one new day on top of a history.

    uv run python bench/daily_loads_bench.py DAYS ORDERS_PER_DAY

Generates DAYS days (jaffle-generate --days) into a temp folder, then, each on a fresh warehouse:
loads every day in one load_raw_days call (one transaction) and one call a day (a transaction a
day); then, on the loaded history, replays the last day and loads the history's next day.
Figures for raw_orders and raw_payments together, wall-clock seconds.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from jaffle_platform.defs.ingest.loader import RAW_TABLES, DayFile, load_raw_days
from jaffle_platform.generate import generate_days

TABLES = ("raw_orders", "raw_payments")


def day_files(raw: Path, table: str) -> list[DayFile]:
    return [
        DayFile(dt.date.fromisoformat(p.stem), p, str(p))
        for p in sorted((raw / table).glob("*.csv"))
    ]


def timed(label: str, fn) -> float:
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    print(f"{label:<48} {seconds:8.2f} s")
    return seconds


def main(days: int, per_day: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        raw = root / "raw"
        generate_days(raw, days + 1, per_day)
        files = {t: day_files(raw, t) for t in TABLES}
        history = {t: f[:-1] for t, f in files.items()}
        print(f"{days} days x {per_day} orders (+ one more day)")

        con = duckdb.connect(str(root / "one.duckdb"))
        timed(
            "range, one transaction",
            lambda: [load_raw_days(con, RAW_TABLES[t], history[t]) for t in TABLES],
        )
        con.close()
        con = duckdb.connect(str(root / "each.duckdb"))
        timed(
            "range, one transaction a day",
            lambda: [load_raw_days(con, RAW_TABLES[t], [f]) for t in TABLES for f in history[t]],
        )
        timed(
            "replay the last day",
            lambda: [
                load_raw_days(con, RAW_TABLES[t], history[t][-1:], allow_shrink=True)
                for t in TABLES
            ],
        )
        timed(
            "one new day on the history",
            lambda: [load_raw_days(con, RAW_TABLES[t], files[t][-1:]) for t in TABLES],
        )
        con.close()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
