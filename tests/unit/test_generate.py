"""The data generator: deterministic, the daily layout, valid for the loader, some idle customers,
status changes repeated on later days and late payments."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections import Counter
from pathlib import Path

import duckdb

from jaffle_platform import settings
from jaffle_platform.defs.ingest.loader import RAW_TABLES, DayFile, load_raw_days, load_raw_table
from jaffle_platform.generate import generate, generate_days, main


def digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*.csv"))
    }


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def load_all(con: duckdb.DuckDBPyConnection, directory: Path) -> None:
    load_raw_table(con, RAW_TABLES["raw_customers"], directory / "raw_customers.csv")
    for table in ("raw_orders", "raw_payments"):
        files = [
            DayFile(dt.date.fromisoformat(p.stem), p, str(p))
            for p in sorted((directory / table).glob("*.csv"))
        ]
        load_raw_days(con, RAW_TABLES[table], files)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    generate(tmp_path / "a", customers=500, seed=3)
    generate(tmp_path / "b", customers=500, seed=3)
    generate(tmp_path / "c", customers=500, seed=4)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")
    generate_days(tmp_path / "d", days=5, orders_per_day=50, seed=3)
    generate_days(tmp_path / "e", days=5, orders_per_day=50, seed=3)
    assert digest(tmp_path / "d") == digest(tmp_path / "e")


def test_files_have_the_daily_layout_and_load_cleanly(tmp_path):
    counts = generate(tmp_path, customers=1000, orders=3000, seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "raw_customers.csv",
        "raw_orders",
        "raw_payments",
    ]
    for table in ("raw_orders", "raw_payments"):
        for path in (tmp_path / table).glob("*.csv"):
            with path.open() as f:
                assert next(csv.reader(f)) == list(RAW_TABLES[table].columns)
    # Each order is in the file of its order_date, each payment in its order's day.
    order_day = {}
    for path in (tmp_path / "raw_orders").glob("*.csv"):
        for row in rows(path):
            assert row["order_date"] == path.stem
            order_day[row["id"]] = path.stem
    for path in (tmp_path / "raw_payments").glob("*.csv"):
        assert {order_day[row["order_id"]] for row in rows(path)} == {path.stem}
    assert counts.days == len(list((tmp_path / "raw_orders").glob("*.csv")))

    con = duckdb.connect()
    load_all(con, tmp_path)
    sizes = {
        t: con.execute(f"select count(*) from jaffle_shop.{t}").fetchall()[0][0] for t in RAW_TABLES
    }
    assert sizes == {"raw_customers": 1000, "raw_orders": 3000, "raw_payments": counts.payments}
    (idle,) = con.execute(
        "select count(*) from jaffle_shop.raw_customers c where not exists "
        "(select 1 from jaffle_shop.raw_orders o where o.user_id = c.id)"
    ).fetchall()[0]
    assert 0.05 * 1000 < idle < 0.35 * 1000, "about one customer in seven never orders"
    (orphans,) = con.execute(
        "select count(*) from jaffle_shop.raw_orders o where o.user_id not in "
        "(select id from jaffle_shop.raw_customers)"
    ).fetchall()[0]
    assert orphans == 0


def test_committed_sample_data_is_the_generators_output(tmp_path, capsys):
    assert main(["--customers", "100", "--seed", "42", "--out", str(tmp_path)]) == 0
    assert "100 customers" in capsys.readouterr().out
    assert digest(tmp_path) == digest(settings.SAMPLE_DATA_DIR)


def test_streamed_days_repeat_status_changes_and_pay_late(tmp_path, capsys):
    assert main(["--days", "40", "--orders-per-day", "200", "--out", str(tmp_path)]) == 0
    assert "8000 orders (780 status changes)" in capsys.readouterr().out
    files = sorted((tmp_path / "raw_orders").glob("*.csv"))
    assert [p.stem for p in files[:2]] == ["2018-01-01", "2018-01-02"] and len(files) == 40

    first_seen: dict[str, dict[str, str]] = {}
    changes = Counter()
    changed_ids = set()
    for path in files:
        day_rows = rows(path)
        assert len({r["id"] for r in day_rows}) == len(day_rows), "ids unique within a day"
        for row in day_rows:
            earlier = first_seen.setdefault(row["id"], {**row, "day": path.stem})
            if earlier["day"] != path.stem:
                # A change repeats the order: same owner and date, another status, a later day.
                assert (row["user_id"], row["order_date"]) == (
                    earlier["user_id"],
                    earlier["order_date"],
                )
                assert row["order_date"] < path.stem
                assert (
                    dt.date.fromisoformat(path.stem) - dt.date.fromisoformat(earlier["day"])
                ).days <= 30
                changes[path.stem] += 1
                changed_ids.add(row["id"])
            else:
                assert row["order_date"] == path.stem
    assert len(first_seen) == 40 * 200
    assert changes["2018-01-01"] == 0 and changes["2018-02-09"] == 20, "10 % of a day's orders"

    order_day = {i: r["day"] for i, r in first_seen.items()}
    late = Counter()
    payment_ids = []
    for path in sorted((tmp_path / "raw_payments").glob("*.csv")):
        for row in rows(path):
            payment_ids.append(int(row["id"]))
            if order_day[row["order_id"]] < path.stem:
                late[path.stem] += 1
            else:
                assert order_day[row["order_id"]] == path.stem
    assert payment_ids == list(range(1, len(payment_ids) + 1)), "append-only, one id each"
    assert late["2018-01-01"] == 0 and late["2018-02-09"] == 10, "5 % paid late"

    con = duckdb.connect()
    load_all(con, tmp_path)
    (statuses_changed,) = con.execute(
        "select count(*) from (select id from jaffle_shop.raw_orders group by id "
        "having count(distinct status) > 1)"
    ).fetchall()[0]
    assert statuses_changed == len(changed_ids), "a change always gives another status"
