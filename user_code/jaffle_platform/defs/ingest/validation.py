"""Validating staged rows against the contract: required values, enums, ranges, a unique key."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from jaffle_platform import settings
from jaffle_platform.defs.ingest.contract import AMOUNT, DATE, ID, RawDataError, RawTable
from jaffle_platform.defs.ingest.reading import q, sql_str


@dataclass(frozen=True)
class Bound:
    """An inclusive range for one column and the env vars that set it."""

    low: int | dt.date | None
    high: int | dt.date | None
    settings: str

    def sql(self, value: int | dt.date) -> str:
        return f"date {sql_str(value.isoformat())}" if isinstance(value, dt.date) else str(value)

    def outside(self, column: str) -> str:
        tests = []
        if self.low is not None:
            tests.append(f"{q(column)} < {self.sql(self.low)}")
        if self.high is not None:
            tests.append(f"{q(column)} > {self.sql(self.high)}")
        return " or ".join(tests) or "false"

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"from {self.low} to {self.high}"
        return f">= {self.low}" if self.low is not None else f"<= {self.high}"


def current_bounds(table: RawTable) -> dict[str, Bound]:
    """The bound of each column with a range, as the settings say now."""
    by_kind = {
        ID: lambda: Bound(settings.min_id(), None, "JAFFLE_MIN_ID"),
        AMOUNT: lambda: Bound(settings.min_amount(), None, "JAFFLE_MIN_AMOUNT"),
        DATE: lambda: Bound(
            settings.min_date(), settings.max_date(), "JAFFLE_MIN_DATE, JAFFLE_MAX_DATE"
        ),
    }
    return {col: by_kind[kind]() for col, kind in table.ranges.items()}


def signed_columns(table: RawTable, bounds: dict[str, Bound]) -> set[str]:
    """Integer columns whose range admits negative values: only they may carry a '-'."""
    signed = set()
    for col in table.integer_columns:
        low = bounds[col].low if col in bounds else None
        if low is None or (isinstance(low, int) and low < 0):
            signed.add(col)
    return signed


def first_violation(
    con: duckdb.DuckDBPyConnection, rows_sql: str, condition: str
) -> tuple[int, tuple]:
    """Line number (header is line 1) and row of the first row matching `condition`."""
    row = con.execute(
        f"select line, * exclude (line) from "
        f"(select row_number() over () + 1 as line, * from {rows_sql}) where {condition} "
        "order by line limit 1"
    ).fetchone()
    assert row is not None
    return int(row[0]), tuple(row[1:])


def validate(
    con: duckdb.DuckDBPyConnection,
    table: RawTable,
    staged: str,
    rows_sql: str,
    source: str,
    bounds: dict[str, Bound],
) -> int:
    """Check the staged rows; raise RawDataError on the first rule broken; return the count.

    `rows_sql` yields the file's rows with the contract's columns, typed, in file order: it is
    only read again to find the line of a broken rule.
    """
    key = q(table.key)
    columns = list(table.columns)
    # Keys that strictly increase down the file are unique: a streaming lag() proves that in one
    # pass with next to no memory, where count(distinct) hashes every key (+350 MiB at 10^7 rows).
    # Only files with keys out of order pay for the exact count.
    checks = ["count(*) as n", f"count(*) filter (where {key} <= _prev_key) as n_unordered"]
    for col in table.not_null:
        checks.append(f"count(*) filter (where {q(col)} is null) as {q('null_' + col)}")
    for col, values in table.accepted_values.items():
        allowed = ", ".join(sql_str(v) for v in values)
        checks.append(f"count(*) filter (where {q(col)} not in ({allowed})) as {q('bad_' + col)}")
    for col, bound in bounds.items():
        checks.append(f"count(*) filter (where {bound.outside(col)}) as {q('out_' + col)}")
    cur = con.execute(
        f"select {', '.join(checks)} from (select *, lag({key}) over () as _prev_key from {staged})"
    )
    names = [d[0] for d in cur.description]
    stats: dict[str, int] = dict(zip(names, cur.fetchone() or (), strict=True))

    for col in table.not_null:
        if stats[f"null_{col}"]:
            line, _ = first_violation(con, rows_sql, f"{q(col)} is null")
            raise RawDataError(
                table.name,
                source,
                f"{col} is empty in {stats[f'null_{col}']} row(s); {col} is required",
                line,
            )
    for col, values in table.accepted_values.items():
        if stats[f"bad_{col}"]:
            allowed = ", ".join(sql_str(v) for v in values)
            line, row = first_violation(con, rows_sql, f"{q(col)} not in ({allowed})")
            raise RawDataError(
                table.name,
                source,
                f"{col} {row[columns.index(col)]!r} is not one of {', '.join(values)} "
                f"({stats[f'bad_{col}']} row(s))",
                line,
            )
    for col, bound in bounds.items():
        if stats[f"out_{col}"]:
            line, row = first_violation(con, rows_sql, bound.outside(col))
            raise RawDataError(
                table.name,
                source,
                f"{col} {row[columns.index(col)]} is out of range: it must be {bound.describe()} "
                f"({stats[f'out_{col}']} row(s); set by {bound.settings})",
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
            f"(select row_number() over () + 1 as line, * from {rows_sql}) "
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
