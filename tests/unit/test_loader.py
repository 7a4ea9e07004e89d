"""The raw loader: typed reads, every kind of bad file refused, the previous table untouched."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import pytest

from jaffle_platform.defs.ingest import loader
from jaffle_platform.defs.ingest.loader import (
    RAW_TABLES,
    RawDataError,
    WarehouseError,
    load_raw_table,
)

ORDERS = RAW_TABLES["raw_orders"]
GOOD = "id,user_id,order_date,status\n1,1,2018-01-01,placed\n2,3,2018-01-02,shipped\n"


def write(tmp_path: Path, text: str, name: str = "raw_orders.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def table_rows(con: duckdb.DuckDBPyConnection, name: str = "raw_orders") -> list[tuple]:
    return con.execute(f"select * from jaffle_shop.{name} order by id").fetchall()


def test_good_file_loads_typed_rows(con, tmp_path):
    result = load_raw_table(con, ORDERS, write(tmp_path, GOOD))
    assert result.num_rows == 2
    assert result.columns == [
        ("id", "BIGINT"),
        ("user_id", "BIGINT"),
        ("order_date", "DATE"),
        ("status", "VARCHAR"),
    ]
    assert [(r[0], str(r[2]), r[3]) for r in table_rows(con)] == [
        (1, "2018-01-01", "placed"),
        (2, "2018-01-02", "shipped"),
    ]


def test_columns_in_any_order_and_extra_columns_are_accepted(con, tmp_path):
    text = "status,note,order_date,user_id,id\nplaced,hi,2018-01-01,7,1\n"
    load_raw_table(con, ORDERS, write(tmp_path, text))
    assert [(r[0], r[1], r[3]) for r in table_rows(con)] == [(1, 7, "placed")]
    cols = [d[0] for d in con.execute("select * from jaffle_shop.raw_orders").description]
    assert cols == ["id", "user_id", "order_date", "status"]


BAD_FILES = {
    "non-integer id": (GOOD + "x,4,2018-01-03,placed\n", 4, 'column "id"'),
    "non-integer user_id": (GOOD + "3,four,2018-01-03,placed\n", 4, 'column "user_id"'),
    "unparseable date": (GOOD + "3,4,2018-02-30,placed\n", 4, 'column "order_date"'),
    "unknown status": (GOOD + "3,4,2018-01-03,lost\n", 4, "status 'lost' is not one of"),
    "duplicate id": (GOOD + "2,4,2018-01-03,placed\n", 4, "id 2 is not unique"),
    "missing id": (GOOD + ",4,2018-01-03,placed\n", 4, "id is empty"),
    "missing date": (GOOD + "3,4,,placed\n", 4, "order_date is empty"),
    "too many fields": (GOOD + "3,4,2018-01-03,placed,extra\n", 4, "expected 4 columns, found 5"),
    "too few fields": (GOOD + "3,4\n", 4, "expected 4 columns, found 2"),
    "missing column": ("id,order_date,status\n1,2018-01-01,placed\n", 1, "missing required"),
    "duplicate column": ("id,id,user_id,order_date,status\n1,1,1,2018-01-01,placed\n", 1, "dup"),
    "empty file": ("", 1, "file is empty"),
    "header only": ("id,user_id,order_date,status\n", 1, "no data rows"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_is_refused_and_previous_table_kept(con, tmp_path, kind):
    load_raw_table(con, ORDERS, write(tmp_path, GOOD, "good.csv"))
    before = table_rows(con)
    text, line, problem = BAD_FILES[kind]
    bad = write(tmp_path, text)

    with pytest.raises(RawDataError) as info:
        load_raw_table(con, ORDERS, bad)

    message = str(info.value)
    assert message.startswith("raw_orders: refused ")
    assert str(bad) in message
    assert f"line {line}" in message
    assert problem in message
    assert table_rows(con) == before
    tables = con.execute("select table_name from information_schema.tables").fetchall()
    assert tables == [("raw_orders",)], "a failed load must not leave a staging table behind"


def test_missing_file_is_refused_with_its_path(con, tmp_path):
    with pytest.raises(RawDataError, match=r"raw_orders: refused .*nope\.csv: file not found"):
        load_raw_table(con, ORDERS, tmp_path / "nope.csv")


def test_payment_method_outside_known_set_is_refused(con, tmp_path):
    text = "id,order_id,payment_method,amount\n1,1,credit_card,100\n2,1,bitcoin,5\n"
    with pytest.raises(RawDataError, match=r"line 3: payment_method 'bitcoin' is not one of"):
        load_raw_table(con, RAW_TABLES["raw_payments"], write(tmp_path, text, "p.csv"))


def test_quoted_fields_with_commas_load(con, tmp_path):
    text = 'id,first_name,last_name\n1,"Anne, Marie",O\'Brien\n'
    load_raw_table(con, RAW_TABLES["raw_customers"], write(tmp_path, text, "c.csv"))
    assert table_rows(con, "raw_customers") == [(1, "Anne, Marie", "O'Brien")]


def test_unique_ids_out_of_order_load(con, tmp_path):
    rows = ["3,1,2018-01-03,placed", "1,1,2018-01-01,placed", "2,1,2018-01-02,placed"]
    text = "id,user_id,order_date,status\n" + "\n".join(rows) + "\n"
    assert load_raw_table(con, ORDERS, write(tmp_path, text)).num_rows == 3
    assert [r[0] for r in table_rows(con)] == [1, 2, 3]


def test_duplicate_ids_far_apart_are_found(con, tmp_path):
    rows = [f"{i},1,2018-01-01,placed" for i in (9, 4, 7, 1, 5, 4, 8)]
    text = "id,user_id,order_date,status\n" + "\n".join(rows) + "\n"
    with pytest.raises(RawDataError, match=r"line 7: id 4 is not unique: it is also on line 3"):
        load_raw_table(con, ORDERS, write(tmp_path, text))


@pytest.mark.parametrize("date", ["01/05/2018", "2018-01-05T10", "yesterday", "2018-00-10"])
def test_dates_that_are_not_iso_are_refused(con, tmp_path, date):
    text = f"id,user_id,order_date,status\n1,1,{date},placed\n"
    with pytest.raises(RawDataError, match=r'line 2: .*column "order_date"'):
        load_raw_table(con, ORDERS, write(tmp_path, text))


CUSTOMERS = RAW_TABLES["raw_customers"]
CUSTOMERS_CSV = "id,first_name,last_name\n1,Michael,P.\n2,Shawn,M.\n"


def test_the_file_a_snapshot_was_loaded_from_is_not_read_again(con, tmp_path, monkeypatch):
    path = write(tmp_path, CUSTOMERS_CSV, "raw_customers.csv")
    first = load_raw_table(con, CUSTOMERS, path)
    assert (first.num_rows, first.unchanged) == (2, False)
    again = load_raw_table(con, CUSTOMERS, path)
    assert (again.num_rows, again.unchanged, again.fingerprint) == (2, True, first.fingerprint)

    # reload (a full refresh) reads it again, to the same table and fingerprint.
    reloaded = load_raw_table(con, CUSTOMERS, path, reload=True)
    assert (reloaded.unchanged, reloaded.fingerprint) == (False, first.fingerprint)
    # A byte changed: loaded again.
    path.write_text(CUSTOMERS_CSV.replace("Shawn", "Shaun"))
    changed = load_raw_table(con, CUSTOMERS, path)
    assert changed.unchanged is False and changed.fingerprint != first.fingerprint
    assert table_rows(con, "raw_customers")[1] == (2, "Shaun", "M.")
    # Other rules (JAFFLE_MIN_ID): the same file is checked again, and refused.
    monkeypatch.setenv("JAFFLE_MIN_ID", "2")
    with pytest.raises(RawDataError, match="line 2: id 1 is out of range"):
        load_raw_table(con, CUSTOMERS, path)


@pytest.mark.parametrize(
    "edit",
    [
        "insert into jaffle_shop.raw_customers values (3, 'Kathleen', 'P.')",
        "delete from jaffle_shop.raw_customers where id = 1",
        "update jaffle_shop.raw_customers set first_name = 'Shaun' where id = 2",
    ],
)
def test_a_snapshot_table_edited_by_hand_is_loaded_again(con, tmp_path, edit):
    path = write(tmp_path, CUSTOMERS_CSV, "raw_customers.csv")
    loaded = load_raw_table(con, CUSTOMERS, path)
    expected = table_rows(con, "raw_customers")
    con.execute(edit)
    again = load_raw_table(con, CUSTOMERS, path)
    assert (again.unchanged, again.fingerprint) == (False, loaded.fingerprint)
    assert table_rows(con, "raw_customers") == expected


def test_a_changed_contract_checks_a_kept_file_again(con, tmp_path):
    path = write(tmp_path, CUSTOMERS_CSV.replace("Michael", ""), "raw_customers.csv")
    assert load_raw_table(con, CUSTOMERS, path).num_rows == 2
    stricter = dataclasses.replace(CUSTOMERS, not_null=(*CUSTOMERS.not_null, "first_name"))
    with pytest.raises(RawDataError, match="line 2: first_name is empty"):
        load_raw_table(con, stricter, path)


def test_a_file_written_while_it_loads_is_not_taken_for_what_was_hashed(con, tmp_path, monkeypatch):
    path = write(tmp_path, CUSTOMERS_CSV, "raw_customers.csv")
    real_stage = loader._stage

    def stage_then_append(*args, **kwargs):
        rows = real_stage(*args, **kwargs)
        with path.open("a") as f:  # a writer still appending to a local RAW_DATA_URI file
            f.write("3,Kathleen,P.\n")
        return rows

    monkeypatch.setattr(loader, "_stage", stage_then_append)
    with pytest.raises(WarehouseError, match="the file changed while it was loaded"):
        load_raw_table(con, CUSTOMERS, path)
    monkeypatch.setattr(loader, "_stage", real_stage)
    assert load_raw_table(con, CUSTOMERS, path).num_rows == 3


def test_a_refused_file_leaves_the_fingerprint_of_the_table_it_kept(con, tmp_path):
    good = write(tmp_path, CUSTOMERS_CSV, "raw_customers.csv")
    loaded = load_raw_table(con, CUSTOMERS, good)
    bad = write(tmp_path, CUSTOMERS_CSV + "2,Kathleen,P.\n", "bad.csv")
    with pytest.raises(RawDataError, match="id 2 is not unique"):
        load_raw_table(con, CUSTOMERS, bad)
    (comment,) = con.execute(
        "select comment from duckdb_tables() where table_name = 'raw_customers'"
    ).fetchone() or ("",)
    assert comment == loaded.fingerprint
    assert load_raw_table(con, CUSTOMERS, good).unchanged is True
