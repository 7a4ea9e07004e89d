"""The fast integer check gives the text read's verdicts.

DuckDB parses the integers itself (it takes `1.2` for 1 and `1e2` for 100), and a census of the
file's non-digit bytes proves the values were plain digits. These tests try to fool the census
(forms whose value has as many digits as the text has bytes, a missing final newline, a stray
line end), check that harmless layouts still load, and compare the fast check with the text
read on randomly damaged files.
"""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pytest

from jaffle_platform.defs.ingest.loader import RAW_TABLES, RawDataError, load_raw_table
from jaffle_platform.defs.ingest.reading import byte_census, q, read_csv_sql, read_header
from jaffle_platform.defs.ingest.validation import (
    current_bounds,
    integers_proven,
    signed_columns,
    staged_stats,
)
from jaffle_platform.generate import generate, generate_days

ORDERS = RAW_TABLES["raw_orders"]
PAYMENTS = RAW_TABLES["raw_payments"]
HEADER = "id,user_id,order_date,status\n"
GOOD = HEADER + "".join(f"{i},{i % 7 + 1},2018-01-{i % 28 + 1:02d},placed\n" for i in range(1, 101))
NOT_PLAIN = "is not a plain integer"


def write(path: Path, data: str) -> Path:
    path.write_bytes(data.encode())
    return path


def rows(con: duckdb.DuckDBPyConnection, table: str = "raw_orders") -> list[tuple]:
    return con.execute(f"select * from jaffle_shop.{table} order by all").fetchall()


def outcome(con: duckdb.DuckDBPyConnection, path: Path) -> tuple:
    """What a user sees of one load: the rows loaded, or the refusal's line and problem."""
    try:
        load_raw_table(con, ORDERS, path)
    except RawDataError as exc:
        return ("refused", exc.line, exc.problem)
    return ("loaded", rows(con))


def proven(tmp_path: Path, table_name: str, path: Path) -> bool:
    """Whether the census alone vouches for the integers of `path` (no text read needed)."""
    table = RAW_TABLES[table_name]
    header = read_header(table, path, str(path))
    census = byte_census(path)
    assert census is not None
    bounds = current_bounds(table)
    signed = signed_columns(table, bounds)
    source = read_csv_sql(table, path, header, text_integers=False)
    con = duckdb.connect()
    try:
        con.execute(f"create table t as select {', '.join(map(q, table.columns))} from {source}")
        return integers_proven(table, header, census, staged_stats(con, table, "t", bounds, signed))
    finally:
        con.close()


def test_generated_files_are_proven_by_the_census_alone(tmp_path):
    generate(tmp_path, customers=500, orders=500, seed=3)
    generate_days(tmp_path / "days", days=5, orders_per_day=100, seed=3)
    for name, table in RAW_TABLES.items():
        if not table.daily:
            assert proven(tmp_path, name, tmp_path / table.file_name), name
            continue
        for root in (tmp_path, tmp_path / "days"):
            files = sorted((root / name).glob("*.csv"))
            assert files
            for path in files:
                assert proven(tmp_path, name, path), path


def test_one_sign_is_enough_for_the_census_to_ask_the_text_read(tmp_path):
    assert proven(tmp_path, "raw_orders", write(tmp_path / "a.csv", GOOD))
    signed = write(tmp_path / "b.csv", GOOD.replace(",3,", ",+3,", 1))
    assert not proven(tmp_path, "raw_orders", signed)


def test_quoted_fields_are_proven_without_the_text_read(tmp_path):
    quoted = "".join(
        ",".join(f'"{v}"' for v in line.split(",")) + "\n" for line in GOOD.splitlines()[1:]
    )
    assert proven(tmp_path, "raw_orders", write(tmp_path / "a.csv", HEADER + quoted))
    names = 'id,first_name,last_name\n1,"Anne, ""Nan""",O\'Brien\n2,"Two\nlines",X\n'
    assert proven(tmp_path, "raw_customers", write(tmp_path / "c.csv", names))
    assert not proven(
        tmp_path, "raw_orders", write(tmp_path / "b.csv", GOOD + '101,"+5",2018-01-01,placed\n')
    )


# Each value below parses to an integer with as many digits as the text has bytes (or more), so
# comparing lengths would let it through; the census must not.
FOOLING = ["1e2", "9e2", "1e+3", "1e03", "1.e3", ".5e4", "0xFFFFFFFFFFF", "0b101", "5\t", "5 "]


@pytest.mark.parametrize("value", FOOLING)
@pytest.mark.parametrize("final_newline", [True, False])
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_values_built_to_fool_the_census_are_refused(con, tmp_path, value, final_newline, line_end):
    load_raw_table(con, ORDERS, write(tmp_path / "good.csv", GOOD))
    before = rows(con)
    data = GOOD + f"101,{value},2018-01-01,placed" + ("\n" if final_newline else "")
    with pytest.raises(RawDataError) as info:
        load_raw_table(
            con, ORDERS, write(tmp_path / "raw_orders.csv", data.replace("\n", line_end))
        )
    assert info.value.line == 102
    assert f'column "user_id": {value!r} {NOT_PLAIN}' in info.value.problem
    assert rows(con) == before


def test_a_sign_balanced_by_a_missing_final_newline_is_refused(con, tmp_path):
    data = GOOD + "101,+5,2018-01-01,placed"
    with pytest.raises(RawDataError, match=rf"line 102: column \"user_id\": '\+5' {NOT_PLAIN}"):
        load_raw_table(con, ORDERS, write(tmp_path / "raw_orders.csv", data))


def test_blank_lines_closing_the_file_are_left_out_and_hide_nothing(con, tmp_path):
    assert proven(tmp_path, "raw_orders", write(tmp_path / "a.csv", GOOD + "\n\n"))
    crlf = GOOD.replace("\n", "\r\n")
    assert proven(tmp_path, "raw_orders", write(tmp_path / "b.csv", crlf + "\r\n\r\n"))
    for end in ("\n\n", "\n\n\n"):
        data = GOOD + "101,+5,2018-01-01,placed" + end
        with pytest.raises(RawDataError, match=rf"line 102: column \"user_id\": '\+5' {NOT_PLAIN}"):
            load_raw_table(con, ORDERS, write(tmp_path / "c.csv", data))


def test_crlf_files_are_proven_unless_a_line_end_is_short(con, tmp_path):
    crlf = GOOD.replace("\n", "\r\n")
    census = byte_census(write(tmp_path / "a.csv", crlf))
    assert census is not None and census.line_end == 2
    assert proven(tmp_path, "raw_orders", tmp_path / "a.csv")
    # A line ending in a lone LF or CR is a byte short of CRLF, the byte a '+' adds elsewhere:
    # the census stands aside and the text read decides.
    lines = crlf.split("\r\n")
    for short in ("\n", "\r"):
        mixed = "\r\n".join(lines[:50]) + short + "\r\n".join(lines[50:])
        bad = write(tmp_path / "b.csv", mixed.replace(",3,", ",+3,", 1))
        assert byte_census(bad) is None
        with pytest.raises(RawDataError):
            load_raw_table(con, ORDERS, bad)


HARMLESS = {
    "quoted integer": (GOOD + '101,"12",2018-01-01,placed\n', (101, 12)),
    "quoted status": (GOOD + '101,12,2018-01-01,"placed"\n', (101, 12)),
    "leading zeros": (GOOD + "101,007,2018-01-01,placed\n", (101, 7)),
    "no final newline": (GOOD + "101,12,2018-01-01,placed", (101, 12)),
    "CRLF line ends": ((GOOD + "101,12,2018-01-01,placed\n").replace("\n", "\r\n"), (101, 12)),
    "byte order mark": ("\ufeff" + GOOD + "101,12,2018-01-01,placed\n", (101, 12)),
    "blank line": (GOOD + "\n101,12,2018-01-01,placed\n", (101, 12)),
    "trailing empty field": (GOOD + "101,12,2018-01-01,placed,\n", (101, 12)),
}


@pytest.mark.parametrize("kind", sorted(HARMLESS))
def test_harmless_layouts_load(con, tmp_path, kind):
    data, (last_id, last_user) = HARMLESS[kind]
    assert load_raw_table(con, ORDERS, write(tmp_path / "raw_orders.csv", data)).num_rows == 101
    assert rows(con)[-1][:2] == (last_id, last_user)


def test_negative_amounts_are_counted_when_the_range_allows_them(con, tmp_path, monkeypatch):
    monkeypatch.setenv("JAFFLE_MIN_AMOUNT", "-500")
    head = "id,order_id,payment_method,amount\n"
    good = head + "1,1,coupon,-200\n2,1,coupon,300\n3,2,gift_card,-1\n"
    assert load_raw_table(con, PAYMENTS, write(tmp_path / "p.csv", good)).num_rows == 3
    assert proven(tmp_path, "raw_payments", tmp_path / "p.csv")
    for value in ("+200", "-2e2", "--2", "-0x5"):
        bad = write(tmp_path / "p.csv", good + f"4,2,coupon,{value}\n")
        with pytest.raises(RawDataError, match=rf"line 5: column \"amount\": .* {NOT_PLAIN}"):
            load_raw_table(con, PAYMENTS, bad)
    assert [r[3] for r in rows(con, "raw_payments")] == [-200, 300, -1]


def test_mixed_line_ends_are_refused_not_blamed_on_the_warehouse(con, tmp_path):
    data = GOOD + "101,5,2018-01-01,placed\r\n102,6,2018-01-01,placed\n"
    with pytest.raises(RawDataError, match="not valid CSV: DuckDB's parser reached an invalid"):
        load_raw_table(con, ORDERS, write(tmp_path / "raw_orders.csv", data))


MUTATION_CHARS = "0123456789.eE+- \t_xXbaf\u00e9\uff10"


def damaged(rng: random.Random) -> str:
    """GOOD with one to three integer fields damaged: characters inserted, replaced or dropped."""
    lines = GOOD.splitlines(keepends=True)
    for _ in range(rng.randint(1, 3)):
        n = rng.randint(1, len(lines) - 1)
        fields = lines[n].rstrip("\n").split(",")
        col = rng.choice([0, 1])
        value = fields[col]
        pos = rng.randint(0, len(value))
        char = rng.choice(MUTATION_CHARS)
        action = rng.choice(["insert", "replace", "drop"])
        if action == "insert":
            value = value[:pos] + char + value[pos:]
        elif action == "replace" and pos < len(value):
            value = value[:pos] + char + value[pos + 1 :]
        elif value:
            value = value[:pos] + value[pos + 1 :]
        fields[col] = value
        lines[n] = ",".join(fields) + "\n"
    text = "".join(lines)
    ending = rng.random()
    return text.rstrip("\n") if ending < 0.2 else text + "\n\n" if ending < 0.35 else text


def with_extra_column(text: str) -> str:
    """The same file with a column outside the contract, which sends it to the text read."""
    return "".join(
        line.rstrip("\n") + ",note" + ("\n" if line.endswith("\n") else "")
        if line.strip()
        else line
        for line in text.splitlines(keepends=True)
    )


def test_fast_check_and_text_read_agree_on_damaged_files(tmp_path):
    rng = random.Random(7)
    refused = 0
    for i in range(50):
        text = damaged(rng)
        fast_con, text_con = duckdb.connect(), duckdb.connect()
        try:
            fast = outcome(fast_con, write(tmp_path / f"fast{i}.csv", text))
            slow = outcome(text_con, write(tmp_path / f"text{i}.csv", with_extra_column(text)))
        finally:
            fast_con.close()
            text_con.close()
        assert fast == slow, text
        refused += fast[0] == "refused"
    # Both kinds of outcome were met, or the comparison proved little.
    assert 15 < refused < 45
