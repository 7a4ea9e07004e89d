"""Load one raw CSV into DuckDB: typed read, validation, atomic swap. The ingest's public API.

Pure of Dagster so it can be unit-tested and benchmarked on its own. The whole load runs in one
DuckDB transaction: the new rows go to a staging table, are validated, and only then replace the
live table. Any failure rolls back, leaving the previous table exactly as it was. A file that
breaks the contract raises RawDataError (do not retry: fix the file); a failure of the warehouse
or the machine raises WarehouseError (retry once fixed).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import duckdb

from jaffle_platform import settings
from jaffle_platform.defs.ingest.contract import (
    ORDER_STATUSES,
    PAYMENT_METHODS,
    RAW_SCHEMA,
    RAW_TABLES,
    RawDataError,
    RawTable,
    WarehouseError,
)
from jaffle_platform.defs.ingest.reading import (
    NOT_AN_INTEGER,
    bad_integer_row,
    byte_census,
    csv_problem,
    failed_integer_column,
    is_refusal,
    q,
    read_csv_sql,
    read_header,
    refusal_for_bad_utf8,
    typed_select,
)
from jaffle_platform.defs.ingest.validation import (
    current_bounds,
    integers_proven,
    signed_columns,
    staged_stats,
    validate,
)

__all__ = [
    "ORDER_STATUSES",
    "PAYMENT_METHODS",
    "RAW_SCHEMA",
    "RAW_TABLES",
    "LoadResult",
    "RawDataError",
    "RawTable",
    "WarehouseError",
    "infrastructure_errors",
    "load_raw_table",
]


@dataclass(frozen=True)
class LoadResult:
    num_rows: int
    columns: list[tuple[str, str]]
    preview: list[tuple]


@contextmanager
def infrastructure_errors(table: str, source: str) -> Iterator[None]:
    """Turn DuckDB, OS and memory failures inside the block into WarehouseError.

    Wrap the warehouse connection in it too: a DuckDB file locked by another process fails there.
    """
    try:
        yield
    except duckdb.Error as exc:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise WarehouseError(table, source, first_line.rstrip(".!")) from exc
    except (OSError, MemoryError) as exc:
        raise WarehouseError(table, source, f"{type(exc).__name__}: {exc}") from exc


def load_raw_table(
    con: duckdb.DuckDBPyConnection,
    table: RawTable,
    csv_path: Path,
    source: str | None = None,
    *,
    allow_shrink: bool = False,
    preview_rows: int = 5,
) -> LoadResult:
    """Replace RAW_SCHEMA.<table> with csv_path's rows, or raise, changing nothing.

    `source` is how the file is named in errors (its URL when it was downloaded). A file with
    fewer rows than JAFFLE_MIN_ROW_RATIO of the current table is refused unless `allow_shrink`.
    """
    source = source or str(csv_path)
    header = read_header(table, csv_path, source)
    bounds = current_bounds(table)
    min_ratio = settings.min_row_ratio()
    signed = signed_columns(table, bounds)
    text_sql = read_csv_sql(table, csv_path, header)
    # The fast read (DuckDB parses the integers, the byte census proves them plain) takes files
    # whose header is the contract's columns (byte_census says which line ends it can vouch
    # for); other files take the text read, whose strict cast refuses what is not plain digits.
    census = None
    if sorted(header) == sorted(table.columns):
        with infrastructure_errors(table.name, source):
            census = byte_census(csv_path)
    if census is None:
        source_sql = text_sql
        select = typed_select(table, signed)
        rows_sql = f"(select {typed_select(table, signed, strict=False)} from {text_sql})"
    else:
        source_sql = read_csv_sql(table, csv_path, header, text_integers=False)
        select = ", ".join(q(c) for c in table.columns)
        rows_sql = f"(select {select} from {source_sql})"
    target = f"{RAW_SCHEMA}.{q(table.name)}"
    staged = f"{RAW_SCHEMA}.{q('_incoming_' + table.name)}"

    with infrastructure_errors(table.name, source):
        con.execute(f"create schema if not exists {RAW_SCHEMA}")
        con.execute("begin transaction")
        try:
            previous = _row_count(con, table.name)
            try:
                con.execute(
                    f"create or replace table {staged} as select {select} from {source_sql}"
                )
            except duckdb.Error as exc:
                if not is_refusal(exc):
                    raise
                # The failed statement aborted the transaction; the lookups below read the file.
                _rollback(con)
                raise _refusal(con, table, csv_path, source, text_sql, signed, exc) from None
            stats = staged_stats(con, table, staged, bounds, signed)
            if census is not None and not integers_proven(table, header, census, stats):
                # Some bytes are not accounted for: a blank line, padding, or an integer that is
                # not plain digits. Only reading the integers as text tells which.
                bad = bad_integer_row(con, table, text_sql, signed)
                if bad is not None:
                    line, problem = bad
                    raise RawDataError(table.name, source, problem, line)
            num_rows = validate(con, table, stats, staged, rows_sql, source, bounds)
            if previous and not allow_shrink and num_rows < min_ratio * previous:
                raise RawDataError(
                    table.name,
                    source,
                    f"the file ends with {num_rows} data row(s), fewer than {min_ratio:.0%} of "
                    f"the {previous} rows in the current table (JAFFLE_MIN_ROW_RATIO); if the "
                    "shrink is intended, load it with allow_shrink (run tag "
                    "jaffle/allow_shrink=true)",
                    num_rows + 1,
                )
            con.execute(f"drop table if exists {target}")
            con.execute(f"alter table {staged} rename to {q(table.name)}")
            result = _describe(con, table, target, num_rows, preview_rows)
            con.execute("commit")
        except BaseException:
            _rollback(con)
            raise
    return result


def _refusal(
    con: duckdb.DuckDBPyConnection,
    table: RawTable,
    csv_path: Path,
    source: str,
    text_sql: str,
    signed: set[str],
    exc: duckdb.Error,
) -> RawDataError:
    """The refusal for a read that DuckDB rejected, with the real line and a plain reason.

    `text_sql` reads the file with its integers as text, to say which one is not plain.
    """
    if "Invalid unicode" in str(exc):
        return refusal_for_bad_utf8(table, csv_path, source)
    if (
        "CSV Error on Line" not in str(exc)
        or NOT_AN_INTEGER in str(exc)
        or failed_integer_column(table, exc)
    ):
        try:
            bad = bad_integer_row(con, table, text_sql, signed)
        except duckdb.Error as text_exc:
            # The typed read took a blank line for a bad integer; the text read says what it is.
            if not is_refusal(text_exc):
                raise
            if "Invalid unicode" in str(text_exc):
                return refusal_for_bad_utf8(table, csv_path, source)
            problem, line = csv_problem(text_exc)
            return RawDataError(table.name, source, problem, line)
        if bad is not None:
            line, problem = bad
            return RawDataError(table.name, source, problem, line)
    problem, line = csv_problem(exc)
    return RawDataError(table.name, source, problem, line)


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    # Fails when already rolled back or when the connection is broken (a fatal error): either
    # way nothing was committed, so the previous table stands.
    with suppress(duckdb.Error):
        con.execute("rollback")


def _row_count(con: duckdb.DuckDBPyConnection, name: str) -> int | None:
    """Rows in the current table, or None when there is no table yet."""
    (exists,) = con.execute(
        "select count(*) from information_schema.tables where table_catalog = current_database() "
        "and table_schema = ? and table_name = ?",
        [RAW_SCHEMA, name],
    ).fetchone() or (0,)
    if not exists:
        return None
    (rows,) = con.execute(f"select count(*) from {RAW_SCHEMA}.{q(name)}").fetchone() or (0,)
    return int(rows)


def _describe(
    con: duckdb.DuckDBPyConnection, table: RawTable, target: str, num_rows: int, preview_rows: int
) -> LoadResult:
    cur = con.execute(f"select * from {target} order by {q(table.key)} limit {preview_rows}")
    preview = cur.fetchall()
    columns = [
        (name, str(dtype))
        for name, dtype in con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = current_database() and table_schema = ? and table_name = ? "
            "order by ordinal_position",
            [RAW_SCHEMA, table.name],
        ).fetchall()
    ]
    return LoadResult(num_rows=num_rows, columns=columns, preview=preview)
