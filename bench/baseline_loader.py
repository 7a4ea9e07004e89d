# The loader of commit 5fecd38 (issue 7's "today's" loader), vendored verbatim from
# `git show 5fecd38:user_code/jaffle_platform/defs/ingest/loader.py` so that loader_bench.py
# can time it against the current loader in the same run. Not used by the pipeline.
"""Load one raw CSV into DuckDB: typed read, validation, atomic swap.

Pure of Dagster so it can be unit-tested and benchmarked on its own. The whole load runs in one
DuckDB transaction: the new rows go to a staging table, are validated, and only then replace the
live table. Any failure rolls back, leaving the previous table exactly as it was.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

RAW_SCHEMA = "jaffle_shop"

ORDER_STATUSES = ("placed", "shipped", "completed", "return_pending", "returned")
PAYMENT_METHODS = ("credit_card", "coupon", "bank_transfer", "gift_card")


@dataclass(frozen=True)
class RawTable:
    """What a raw file must look like: typed columns, a unique key, required values, enums."""

    name: str
    columns: dict[str, str]
    not_null: tuple[str, ...]
    key: str = "id"
    accepted_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"


RAW_TABLES: dict[str, RawTable] = {
    t.name: t
    for t in (
        RawTable(
            name="raw_customers",
            columns={"id": "BIGINT", "first_name": "VARCHAR", "last_name": "VARCHAR"},
            not_null=("id",),
            description="Customers as exported by the shop: one row per customer.",
        ),
        RawTable(
            name="raw_orders",
            columns={
                "id": "BIGINT",
                "user_id": "BIGINT",
                "order_date": "DATE",
                "status": "VARCHAR",
            },
            not_null=("id", "user_id", "order_date", "status"),
            accepted_values={"status": ORDER_STATUSES},
            description="Orders as exported by the shop: one row per order.",
        ),
        RawTable(
            name="raw_payments",
            columns={
                "id": "BIGINT",
                "order_id": "BIGINT",
                "payment_method": "VARCHAR",
                "amount": "BIGINT",
            },
            not_null=("id", "order_id", "payment_method", "amount"),
            accepted_values={"payment_method": PAYMENT_METHODS},
            description="Payments as exported by the shop: one row per payment, amount in cents.",
        ),
    )
}


class RawDataError(Exception):
    """A raw file was refused. The message names the table, the file, the problem and the line."""

    def __init__(self, table: str, source: str, problem: str, line: int | None = None):
        self.table = table
        self.source = source
        self.problem = problem
        self.line = line
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{table}: refused {where}: {problem}. The previous table is unchanged.")


@dataclass(frozen=True)
class LoadResult:
    num_rows: int
    columns: list[tuple[str, str]]
    preview: list[tuple]


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def read_header(table: RawTable, csv_path: Path, source: str) -> list[str]:
    """The file's column names, checked: present, not duplicated, every required column there."""
    if not csv_path.is_file():
        raise RawDataError(table.name, source, "file not found")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        try:
            header = next(csv.reader(f), None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise RawDataError(table.name, source, f"unreadable header: {exc}", 1) from exc
        if header is None or not any(h.strip() for h in header):
            raise RawDataError(table.name, source, "file is empty (no header row)", 1)
        if f.readline() == "":
            raise RawDataError(table.name, source, "header only, no data rows", 1)
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise RawDataError(table.name, source, f"duplicate column(s) {', '.join(dupes)}", 1)
    missing = [c for c in table.columns if c not in header]
    if missing:
        raise RawDataError(
            table.name,
            source,
            f"missing required column(s) {', '.join(missing)} (header is: {', '.join(header)})",
            1,
        )
    return header


def read_csv_sql(table: RawTable, csv_path: Path, header: list[str]) -> str:
    """A DuckDB read_csv call with explicit types: no sniffing, strict row shape."""
    # Columns the model does not know are kept as text only to keep the row shape strict.
    types = {h: table.columns.get(h, "VARCHAR") for h in header}
    columns = "{" + ", ".join(f"{_sql_str(k)}: {_sql_str(v)}" for k, v in types.items()) + "}"
    return (
        f"read_csv({_sql_str(str(csv_path))}, header = true, auto_detect = false, "
        f"delim = ',', quote = '\"', escape = '\"', columns = {columns}, "
        "dateformat = '%Y-%m-%d', strict_mode = true, null_padding = false)"
    )


_LINE = re.compile(r"Line: (\d+)")


def _duckdb_problem(exc: duckdb.Error) -> tuple[str, int | None]:
    """DuckDB's CSV errors are long; keep the line number and the sentence that says what broke."""
    text = str(exc)
    match = _LINE.search(text)
    line = int(match.group(1)) if match else None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    detail = next(
        (
            ln
            for ln in lines
            if ln.startswith(("Error when converting", "Expected Number of Columns", "Value with"))
        ),
        None,
    )
    if detail is None:
        detail = re.sub(r"^[A-Za-z ]+Error: ", "", lines[0]) if lines else text
        detail = _LINE.sub("", detail).replace("CSV Error on", "").strip(" :")
    cols = re.match(r"Expected Number of Columns: (\d+) Found: (\d+)", detail)
    if cols:
        detail = f"expected {cols.group(1)} columns, found {cols.group(2)}"
    return detail.rstrip("."), line


def _first_violation(
    con: duckdb.DuckDBPyConnection, source_sql: str, condition: str
) -> tuple[int, tuple]:
    """Line number (header is line 1) and row of the first row matching `condition`."""
    row = con.execute(
        f"select line, * exclude (line) from "
        f"(select row_number() over () + 1 as line, * from {source_sql}) where {condition} "
        "order by line limit 1"
    ).fetchone()
    assert row is not None
    return int(row[0]), tuple(row[1:])


def validate(
    con: duckdb.DuckDBPyConnection, table: RawTable, staged: str, source_sql: str, source: str
) -> int:
    """Check the staged rows; raise RawDataError on the first rule broken; return the count."""
    key = _q(table.key)
    # Keys that strictly increase down the file are unique: a streaming lag() proves that in one
    # pass with next to no memory, where count(distinct) hashes every key (+350 MiB at 10^7 rows).
    # Only files with keys out of order pay for the exact count.
    checks = ["count(*) as n", f"count(*) filter (where {key} <= _prev_key) as n_unordered"]
    for col in table.not_null:
        checks.append(f"count(*) filter (where {_q(col)} is null) as {_q('null_' + col)}")
    for col, values in table.accepted_values.items():
        allowed = ", ".join(_sql_str(v) for v in values)
        checks.append(f"count(*) filter (where {_q(col)} not in ({allowed})) as {_q('bad_' + col)}")
    cur = con.execute(
        f"select {', '.join(checks)} from (select *, lag({key}) over () as _prev_key from {staged})"
    )
    names = [d[0] for d in cur.description]
    stats: dict[str, int] = dict(zip(names, cur.fetchone() or (), strict=True))

    for col in table.not_null:
        if stats[f"null_{col}"]:
            line, _ = _first_violation(con, source_sql, f"{_q(col)} is null")
            raise RawDataError(
                table.name,
                source,
                f"{col} is empty in {stats[f'null_{col}']} row(s); {col} is required",
                line,
            )
    for col, values in table.accepted_values.items():
        if stats[f"bad_{col}"]:
            allowed = ", ".join(_sql_str(v) for v in values)
            line, row = _first_violation(con, source_sql, f"{_q(col)} not in ({allowed})")
            value = row[list(_header_names(con, source_sql)).index(col)]
            raise RawDataError(
                table.name,
                source,
                f"{col} {value!r} is not one of {', '.join(values)} ({stats[f'bad_{col}']} row(s))",
                line,
            )
    if stats["n_unordered"]:
        (n_keys,) = con.execute(f"select count(distinct {key}) from {staged}").fetchone() or (0,)
        stats["n_keys"] = n_keys
    else:
        stats["n_keys"] = stats["n"]
    if stats["n"] != stats["n_keys"]:
        line, value, first = con.execute(
            f"select line, {key}, min(line) over (partition by {key}) from "
            f"(select row_number() over () + 1 as line, * from {source_sql}) "
            f"qualify count(*) over (partition by {key}) > 1 and line > min(line) over "
            f"(partition by {key}) order by line limit 1"
        ).fetchone() or (None, None, None)
        raise RawDataError(
            table.name,
            source,
            f"{table.key} {value} is not unique: it is also on line {first} "
            f"({stats['n'] - stats['n_keys']} duplicate row(s))",
            line,
        )
    return int(stats["n"])


def _header_names(con: duckdb.DuckDBPyConnection, source_sql: str) -> list[str]:
    return [d[0] for d in con.execute(f"select * from {source_sql} limit 0").description]


def load_raw_table(
    con: duckdb.DuckDBPyConnection,
    table: RawTable,
    csv_path: Path,
    source: str | None = None,
    preview_rows: int = 5,
) -> LoadResult:
    """Replace RAW_SCHEMA.<table> with csv_path's rows, or raise RawDataError, changing nothing.

    `source` is how the file is named in errors (its URL when it was downloaded).
    """
    source = source or str(csv_path)
    header = read_header(table, csv_path, source)
    source_sql = read_csv_sql(table, csv_path, header)
    target = f"{RAW_SCHEMA}.{_q(table.name)}"
    staged = f"{RAW_SCHEMA}.{_q('_incoming_' + table.name)}"
    select_cols = ", ".join(_q(c) for c in table.columns)

    con.execute(f"create schema if not exists {RAW_SCHEMA}")
    con.execute("begin transaction")
    try:
        try:
            con.execute(
                f"create or replace table {staged} as select {select_cols} from {source_sql}"
            )
        except duckdb.Error as exc:
            problem, line = _duckdb_problem(exc)
            raise RawDataError(table.name, source, problem, line) from None
        num_rows = validate(con, table, staged, source_sql, source)
        con.execute(f"drop table if exists {target}")
        con.execute(f"alter table {staged} rename to {_q(table.name)}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    cur = con.execute(f"select * from {target} order by {_q(table.key)} limit {preview_rows}")
    preview = cur.fetchall()
    columns = [
        (name, str(dtype))
        for name, dtype in con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [RAW_SCHEMA, table.name],
        ).fetchall()
    ]
    return LoadResult(num_rows=num_rows, columns=columns, preview=preview)
