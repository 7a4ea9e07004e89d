"""The daily loader: a day's file replaces exactly that day's rows, in one transaction."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from jaffle_platform.defs.ingest.loader import (
    RAW_TABLES,
    DayFile,
    RawDataError,
    load_raw_days,
    load_raw_table,
)

ORDERS = RAW_TABLES["raw_orders"]
PAYMENTS = RAW_TABLES["raw_payments"]
D1, D2, D3 = dt.date(2018, 1, 1), dt.date(2018, 1, 2), dt.date(2018, 1, 3)
HEADER = "id,user_id,order_date,status\n"


@pytest.fixture
def con(tmp_path: Path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    yield con
    con.close()


def day_file(tmp_path: Path, day: dt.date, text: str, table: str = "raw_orders") -> DayFile:
    path = tmp_path / table / f"{day}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return DayFile(day, path, str(path))


def orders(*rows: str) -> str:
    return HEADER + "".join(f"{r}\n" for r in rows)


def contents(con: duckdb.DuckDBPyConnection, table: str = "raw_orders") -> list[tuple]:
    """Every row and column, in a fixed order: the table's contents as a reader sees them."""
    return con.execute(f"select * from jaffle_shop.{table} order by all").fetchall()


def schema(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'jaffle_shop' order by all"
    ).fetchall()


def test_days_load_with_their_load_day_and_a_day_replaces_only_its_rows(con, tmp_path):
    load_raw_days(
        con,
        ORDERS,
        [
            day_file(tmp_path, D1, orders("1,1,2018-01-01,placed", "2,2,2018-01-01,placed")),
            day_file(tmp_path, D2, orders("1,1,2018-01-01,shipped", "3,3,2018-01-02,placed")),
        ],
    )
    assert [(r[0], r[3], r[4]) for r in contents(con)] == [
        (1, "placed", D1),
        (1, "shipped", D2),
        (2, "placed", D1),
        (3, "placed", D2),
    ]
    assert [c for _, c, _ in schema(con)] == sorted(
        ["id", "user_id", "order_date", "status", "load_day"]
    )

    result = load_raw_days(
        con, ORDERS, [day_file(tmp_path, D2, orders("3,3,2018-01-02,completed"))], allow_shrink=True
    )
    assert result.rows_per_day == {D2: 1} and result.table_rows == 3
    assert [(r[0], r[3], r[4]) for r in contents(con)] == [
        (1, "placed", D1),
        (2, "placed", D1),
        (3, "completed", D2),
    ]


def test_a_replayed_day_gives_the_same_table(con, tmp_path):
    files = [
        day_file(tmp_path, D1, orders("1,1,2018-01-01,placed", "2,2,2018-01-01,placed")),
        day_file(tmp_path, D2, orders("1,1,2018-01-01,shipped")),
    ]
    load_raw_days(con, ORDERS, files)
    once = contents(con)
    load_raw_days(con, ORDERS, files[:1])
    load_raw_days(con, ORDERS, files[1:])
    load_raw_days(con, ORDERS, files)
    assert contents(con) == once
    assert schema(con) == [
        ("raw_orders", c, t)
        for c, t in sorted(
            [
                ("id", "BIGINT"),
                ("load_day", "DATE"),
                ("order_date", "DATE"),
                ("status", "VARCHAR"),
                ("user_id", "BIGINT"),
            ]
        )
    ]


REFUSED = {
    "unknown status": ("1,1,2018-01-01,lost", "status 'lost' is not one of"),
    "duplicate id in the file": ("5,1,2018-01-01,placed\n5,1,2018-01-01,placed", "not unique"),
    "not an integer": ("1.5,1,2018-01-01,placed", "not a plain integer"),
    "impossible date": ("1,1,2018-02-30,placed", 'column "order_date"'),
    "missing value": ("1,,2018-01-01,placed", "user_id is empty"),
    "short row": ("1,1", "expected 4 columns"),
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_a_refused_day_in_a_range_leaves_the_table_exactly_as_it_was(con, tmp_path, kind):
    load_raw_days(
        con,
        ORDERS,
        [
            day_file(tmp_path, D1, orders("1,1,2018-01-01,placed", "2,2,2018-01-01,placed")),
            day_file(tmp_path, D2, orders("3,3,2018-01-02,placed")),
        ],
    )
    before, before_schema = contents(con), schema(con)
    row, problem = REFUSED[kind]
    good = day_file(
        tmp_path / "new", D1, orders("1,1,2018-01-01,returned", "2,2,2018-01-01,placed")
    )
    bad = day_file(tmp_path / "new", D2, orders(row))
    with pytest.raises(RawDataError) as info:
        load_raw_days(con, ORDERS, [good, bad], allow_shrink=True)
    assert str(bad.path) in str(info.value) and problem in str(info.value)
    assert "line 2" in str(info.value)
    assert contents(con) == before, "the good day of the range is rolled back too"
    assert schema(con) == before_schema, "no staging table is left behind"


def test_the_shrink_rule_holds_per_day(con, tmp_path, monkeypatch):
    monkeypatch.setenv("JAFFLE_MIN_ROW_RATIO", "0.5")
    rows = [f"{i},1,2018-01-01,placed" for i in range(1, 11)]
    load_raw_days(con, ORDERS, [day_file(tmp_path, D1, orders(*rows))])
    load_raw_days(con, ORDERS, [day_file(tmp_path, D2, orders("11,1,2018-01-02,placed"))])
    before = contents(con)
    with pytest.raises(RawDataError, match=r"line 5: the file ends with 4 data row\(s\), fewer "):
        load_raw_days(con, ORDERS, [day_file(tmp_path, D1, orders(*rows[:4]))])
    assert contents(con) == before
    load_raw_days(con, ORDERS, [day_file(tmp_path, D1, orders(*rows[:4]))], allow_shrink=True)
    assert len(contents(con)) == 5
    # A new day, small next to the table, is not a shrink: it is compared with its own day.
    load_raw_days(con, ORDERS, [day_file(tmp_path, D3, orders("12,1,2018-01-03,placed"))])


def test_a_payment_already_loaded_from_another_day_is_refused(con, tmp_path):
    head = "id,order_id,payment_method,amount\n"
    load_raw_days(
        con, PAYMENTS, [day_file(tmp_path, D1, head + "1,1,coupon,100\n2,1,coupon,200\n", "p")]
    )
    before = contents(con, "raw_payments")
    late = day_file(tmp_path, D2, head + "3,1,gift_card,300\n2,5,coupon,100\n", "p")
    with pytest.raises(RawDataError) as info:
        load_raw_days(con, PAYMENTS, [late])
    message = str(info.value)
    assert "line 3" in message and "id 2 is already loaded from the file of 2018-01-01" in message
    assert contents(con, "raw_payments") == before
    # Replaying the day that holds it is fine: its own rows are replaced.
    load_raw_days(
        con, PAYMENTS, [day_file(tmp_path, D1, head + "1,1,coupon,100\n2,1,coupon,250\n", "p")]
    )
    assert [r[3] for r in contents(con, "raw_payments")] == [100, 250]


def test_no_files_creates_the_empty_table_and_keeps_rows(con, tmp_path):
    assert load_raw_days(con, ORDERS, []).table_rows == 0
    assert contents(con) == []
    load_raw_days(con, ORDERS, [day_file(tmp_path, D1, orders("1,1,2018-01-01,placed"))])
    result = load_raw_days(con, ORDERS, [])
    assert result.table_rows == 1 and result.rows_per_day == {}


def test_a_table_from_the_flat_layout_is_replaced_by_the_daily_table(con, tmp_path):
    flat = tmp_path / "raw_orders.csv"
    flat.write_text(orders("1,1,2018-01-01,placed", "2,1,2018-01-01,placed"))
    load_raw_table(con, ORDERS, flat)
    load_raw_days(con, ORDERS, [day_file(tmp_path, D2, orders("3,3,2018-01-02,placed"))])
    assert [(r[0], r[4]) for r in contents(con)] == [(3, D2)]


def test_payments_may_move_between_days_that_the_same_run_replaces(con, tmp_path):
    head = "id,order_id,payment_method,amount\n"
    load_raw_days(
        con,
        PAYMENTS,
        [
            day_file(tmp_path, D1, head + "1,1,coupon,100\n", "p"),
            day_file(tmp_path, D2, head + "2,1,coupon,200\n", "p"),
        ],
    )
    # Another export of both days, where payment 2 belongs to the first day.
    moved = [
        day_file(tmp_path / "new", D1, head + "1,1,coupon,100\n2,1,coupon,200\n", "p"),
        day_file(tmp_path / "new", D2, head + "3,1,coupon,300\n", "p"),
    ]
    load_raw_days(con, PAYMENTS, moved, allow_shrink=True)
    assert [(r[0], r[4]) for r in contents(con, "raw_payments")] == [(1, D1), (2, D1), (3, D2)]
