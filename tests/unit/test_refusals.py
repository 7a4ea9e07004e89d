"""Every refusal of the data contract: the message names table, file, line and problem, and the
previous table is left exactly as it was (same rows, same schema, no staging table)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from jaffle_platform.defs.ingest.loader import RAW_TABLES, RawDataError, load_raw_table

ORDERS = RAW_TABLES["raw_orders"]
PAYMENTS = RAW_TABLES["raw_payments"]
HEADER = "id,user_id,order_date,status\n"
# 100 rows, so that a refused load would visibly replace something.
GOOD = HEADER + "".join(f"{i},{i % 7 + 1},2018-01-{i % 28 + 1:02d},placed\n" for i in range(1, 101))
NEXT = "101,1,2018-01-01,placed\n"
BAD_LINE = 102  # the header, 100 good rows, then the bad one


def snapshot(con: duckdb.DuckDBPyConnection) -> tuple[list, list, list]:
    """Everything a reader could see of the raw schema: tables, column types, every row."""
    tables = con.execute(
        "select table_name from information_schema.tables order by table_name"
    ).fetchall()
    schema = con.execute(
        "select table_name, column_name, data_type, ordinal_position "
        "from information_schema.columns order by all"
    ).fetchall()
    rows = con.execute("select * from jaffle_shop.raw_orders order by all").fetchall()
    return tables, schema, rows


def refuse(con, tmp_path: Path, data: str | bytes, **kwargs) -> tuple[RawDataError, Path]:
    """Load GOOD, then `data`; assert the refusal left the table as it was; return the error."""
    load_raw_table(con, ORDERS, _write(tmp_path / "good.csv", GOOD))
    before = snapshot(con)
    bad = _write(tmp_path / "raw_orders.csv", data)
    with pytest.raises(RawDataError) as info:
        load_raw_table(con, ORDERS, bad, **kwargs)
    assert snapshot(con) == before
    assert len(before[2]) == 100
    return info.value, bad


def _write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def assert_names(error: RawDataError, bad: Path, line: int, problem: str) -> None:
    message = str(error)
    assert message.startswith("raw_orders: refused ")
    assert f"{bad}, line {line}: " in message
    assert problem in message
    assert message.endswith("The previous table is unchanged.")
    assert (error.table, error.source, error.line) == ("raw_orders", str(bad), line)


NO_DATA = {
    "header then a blank line": HEADER + "\n",
    "header then blank lines": HEADER + "\n\n\n",
    "CRLF blank lines": HEADER.replace("\n", "\r\n") + "\r\n\r\n",
    "whitespace-only lines": HEADER + "   \n\t\n \r\n",
}


@pytest.mark.parametrize("kind", sorted(NO_DATA))
def test_no_data_rows_in_any_form_is_refused(con, tmp_path, kind):
    error, bad = refuse(con, tmp_path, NO_DATA[kind])
    assert_names(error, bad, 2, "no data rows")


def test_whitespace_only_line_among_the_rows_is_refused(con, tmp_path):
    error, bad = refuse(con, tmp_path, GOOD + "   \n" + NEXT)
    assert_names(error, bad, BAD_LINE, "blank (whitespace-only) line")


NOT_PLAIN = {
    "fraction": "1.2",
    "exponent": "1e9",
    "plus sign": "+5",
    "minus sign": "-3",
    "inner space": "1 2",
    "leading space": " 7",
    "hexadecimal": "0x10",
    "underscore": "1_000",
}


@pytest.mark.parametrize("kind", sorted(NOT_PLAIN))
@pytest.mark.parametrize("column", ["id", "user_id"])
def test_integers_that_are_not_plain_digits_are_refused(con, tmp_path, kind, column):
    value = NOT_PLAIN[kind]
    row = f"{value},1,2018-01-01,placed\n" if column == "id" else f"101,{value},2018-01-01,placed\n"
    error, bad = refuse(con, tmp_path, GOOD + row)
    assert_names(error, bad, BAD_LINE, f'column "{column}": {value!r} is not a plain integer')


def test_integer_too_large_for_64_bits_is_refused(con, tmp_path):
    error, bad = refuse(con, tmp_path, GOOD + "101,99999999999999999999,2018-01-01,placed\n")
    assert_names(error, bad, BAD_LINE, "'99999999999999999999' is too large for a 64-bit integer")


def test_payment_amount_that_is_not_plain_is_refused(con, tmp_path):
    text = "id,order_id,payment_method,amount\n1,1,coupon,100\n2,1,coupon,12.50\n"
    path = _write(tmp_path / "raw_payments.csv", text)
    with pytest.raises(RawDataError, match=r'line 3: column "amount": \'12.50\' is not a plain'):
        load_raw_table(con, PAYMENTS, path)


OUT_OF_RANGE = {
    "id zero": ("0,1,2018-01-01,placed\n", "id 0 is out of range: it must be >= 1"),
    "user_id zero": ("101,0,2018-01-01,placed\n", "user_id 0 is out of range: it must be >= 1"),
    "date before 1900": ("101,1,1899-12-31,placed\n", "order_date 1899-12-31 is out of range"),
    "date far ahead": ("101,1,2999-01-01,placed\n", "order_date 2999-01-01 is out of range"),
}


@pytest.mark.parametrize("kind", sorted(OUT_OF_RANGE))
def test_values_outside_the_ranges_are_refused(con, tmp_path, kind):
    row, problem = OUT_OF_RANGE[kind]
    error, bad = refuse(con, tmp_path, GOOD + row)
    assert_names(error, bad, BAD_LINE, problem)


def test_ranges_follow_the_env_at_call_time(con, tmp_path, monkeypatch):
    late = HEADER + "1,1,2030-06-01,placed\n"
    monkeypatch.setenv("JAFFLE_MAX_DATE", "2030-01-01")
    with pytest.raises(RawDataError, match="from 1900-01-01 to 2030-01-01"):
        load_raw_table(con, ORDERS, _write(tmp_path / "late.csv", late))
    monkeypatch.setenv("JAFFLE_MAX_DATE", "2031-01-01")
    assert load_raw_table(con, ORDERS, tmp_path / "late.csv").num_rows == 1

    payments = "id,order_id,payment_method,amount\n1,1,coupon,50\n"
    monkeypatch.setenv("JAFFLE_MIN_AMOUNT", "100")
    with pytest.raises(RawDataError, match="line 2: amount 50 is out of range: it must be >= 100"):
        load_raw_table(con, PAYMENTS, _write(tmp_path / "p.csv", payments))
    monkeypatch.setenv("JAFFLE_MIN_AMOUNT", "-500")
    refund = "id,order_id,payment_method,amount\n1,1,coupon,-200\n"
    assert load_raw_table(con, PAYMENTS, _write(tmp_path / "p.csv", refund)).num_rows == 1


SHRUNK = HEADER + "".join(f"{i},1,2018-01-01,placed\n" for i in range(1, 50))


def test_file_with_under_half_the_rows_is_refused(con, tmp_path):
    error, bad = refuse(con, tmp_path, SHRUNK)
    assert_names(error, bad, 50, "49 data row(s), fewer than 50% of the 100 rows")
    assert "allow_shrink" in str(error)


def test_shrink_is_loaded_when_allowed_or_above_the_ratio(con, tmp_path, monkeypatch):
    load_raw_table(con, ORDERS, _write(tmp_path / "good.csv", GOOD))
    assert load_raw_table(con, ORDERS, _write(tmp_path / "s.csv", SHRUNK), allow_shrink=True)
    assert con.execute("select count(*) from jaffle_shop.raw_orders").fetchall() == [(49,)]
    load_raw_table(con, ORDERS, tmp_path / "good.csv")
    monkeypatch.setenv("JAFFLE_MIN_ROW_RATIO", "0.4")
    assert load_raw_table(con, ORDERS, tmp_path / "s.csv").num_rows == 49


def test_bad_byte_in_a_data_row_is_an_encoding_problem_on_its_real_line(con, tmp_path):
    error, bad = refuse(con, tmp_path, GOOD.encode() + b"101,1,2018-01-01,pl\xe9ced\n")
    assert_names(error, bad, BAD_LINE, "not valid UTF-8 (an encoding problem): byte 0xe9")


def test_bad_byte_in_the_header_is_an_encoding_problem_on_line_1(con, tmp_path):
    error, bad = refuse(con, tmp_path, b"id,user_id,order_d\xe2te,status\n" + NEXT.encode())
    assert_names(error, bad, 1, "not valid UTF-8")


def test_bad_byte_far_down_a_large_file_is_found_on_its_line(con, tmp_path):
    # Past the first MiB, so the scan crosses read blocks, and with a two-byte 'é' cut in half by
    # the first block's end: a split character must not be taken for the error.
    rows = [f"{i},1,2018-01-01,placed,{'é' * 20}\n" for i in range(1, 30_001)]
    head = "id,user_id,order_date,status,note\n"
    while (head + "".join(rows)).encode()[2**20 - 1] != 0xC3:
        head = head.replace("\n", " \n", 1)
    data = (head + "".join(rows)).encode() + b"30001,1,2018-01-01,plac\xe9d,cafe\n"
    assert len(data) > 2**20
    error, bad = refuse(con, tmp_path, data)
    assert_names(error, bad, 30_002, "not valid UTF-8 (an encoding problem): byte 0xe9 at byte 24")


def test_line_over_the_max_line_size_keeps_duckdbs_reason(con, tmp_path):
    error, bad = refuse(con, tmp_path, GOOD + "101,1,2018-01-01," + "x" * 2_100_000 + "\n")
    assert_names(error, bad, BAD_LINE, "line too long: Maximum line size of 2000000 bytes exceeded")
