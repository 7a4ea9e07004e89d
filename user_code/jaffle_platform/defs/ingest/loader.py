"""Load one raw CSV into DuckDB: typed read, validation, atomic swap. The ingest's public API.

Pure of Dagster so it can be unit-tested and benchmarked on its own. The whole load runs in one
DuckDB transaction: the new rows go to a staging table, are validated, and only then replace the
live table. Any failure rolls back, leaving the previous table exactly as it was. A file that
breaks the contract raises RawDataError (do not retry: fix the file); a failure of the warehouse
or the machine raises WarehouseError (retry once fixed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import duckdb

from jaffle_platform import settings
from jaffle_platform.defs.ingest.contract import (
    LOAD_DAY_COLUMN,
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
    sql_str,
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
    "DayFile",
    "DaysResult",
    "RawTable",
    "WarehouseError",
    "infrastructure_errors",
    "load_raw_days",
    "load_raw_table",
]


@dataclass(frozen=True)
class LoadResult:
    num_rows: int
    columns: list[tuple[str, str]]
    preview: list[tuple]
    # The table was already loaded from this very file under these rules: nothing was done.
    unchanged: bool = False
    fingerprint: str = ""


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


@dataclass(frozen=True)
class _Reader:
    """How to read and validate one file: SQL built once, outside the transaction."""

    table: RawTable
    csv_path: Path
    source: str
    header: list[str]
    census: object
    source_sql: str
    select: str
    rows_sql: str
    text_sql: str
    signed: set[str]


def _reader(table: RawTable, csv_path: Path, source: str, bounds: dict) -> _Reader:
    header = read_header(table, csv_path, source)
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
    return _Reader(
        table, csv_path, source, header, census, source_sql, select, rows_sql, text_sql, signed
    )


def _stage(con: duckdb.DuckDBPyConnection, r: _Reader, staged: str, bounds: dict) -> int:
    """Read r's file into `staged` and validate it, inside the caller's transaction; return the
    row count or raise RawDataError (the caller rolls back)."""
    table = r.table
    try:
        con.execute(f"create or replace table {staged} as select {r.select} from {r.source_sql}")
    except duckdb.Error as exc:
        if not is_refusal(exc):
            raise
        # The failed statement aborted the transaction; the lookups below read the file.
        _rollback(con)
        raise _refusal(con, table, r.csv_path, r.source, r.text_sql, r.signed, exc) from None
    stats = staged_stats(con, table, staged, bounds, r.signed)
    if r.census is not None and not integers_proven(table, r.header, r.census, stats):  # type: ignore[arg-type]
        # Some bytes are not accounted for: a blank line, padding, or an integer that is
        # not plain digits. Only reading the integers as text tells which.
        bad = bad_integer_row(con, table, r.text_sql, r.signed)
        if bad is not None:
            line, problem = bad
            raise RawDataError(table.name, r.source, problem, line)
    return validate(con, table, stats, staged, r.rows_sql, r.source, bounds)


def _check_shrink(
    r: _Reader, num_rows: int, previous: int | None, ratio: float, of_what: str
) -> None:
    if previous and num_rows < ratio * previous:
        raise RawDataError(
            r.table.name,
            r.source,
            f"the file ends with {num_rows} data row(s), fewer than {ratio:.0%} of "
            f"the {previous} rows in {of_what} (JAFFLE_MIN_ROW_RATIO); if the "
            "shrink is intended, load it with allow_shrink (run tag "
            "jaffle/allow_shrink=true)",
            num_rows + 1,
        )


# Bump when what a load checks or how it writes changes: a snapshot file loaded before is then
# read and checked again rather than kept.
LOADER_VERSION = 2


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _rules(table: RawTable, bounds: dict) -> str:
    """A hash of everything a file is checked by: the whole contract of the table, the bounds in
    force, this loader's version and DuckDB's."""
    what = repr((table, sorted(bounds.items()), LOADER_VERSION, duckdb.__version__))
    return hashlib.sha256(what.encode()).hexdigest()[:16]


def _content(con: duckdb.DuckDBPyConnection, table: RawTable) -> str:
    """Rows and an order-free hash of every value of RAW_SCHEMA.<table>: one scan (0.2 s for
    10^7 customers), so a table edited by hand is not taken for the file it was loaded from."""
    columns = ", ".join(q(c) for c in table.columns)
    rows, digest = con.execute(
        f"select count(*), coalesce(bit_xor(hash({columns})), 0) from {RAW_SCHEMA}.{q(table.name)}"
    ).fetchone() or (0, 0)
    return f"{rows}:{digest}"


def load_raw_table(
    con: duckdb.DuckDBPyConnection,
    table: RawTable,
    csv_path: Path,
    source: str | None = None,
    *,
    allow_shrink: bool = False,
    reload: bool = False,
    sha256: str | None = None,
    preview_rows: int = 5,
) -> LoadResult:
    """Replace RAW_SCHEMA.<table> with csv_path's rows, or raise, changing nothing.

    `source` is how the file is named in errors (its URL when it was downloaded). A file with
    fewer rows than JAFFLE_MIN_ROW_RATIO of the current table is refused unless `allow_shrink`.

    The table's comment records what it was loaded from: the file's sha256 (`sha256`, when the
    caller has it already), the rules it was checked by, and the rows it then held. The same
    file under the same rules, on a table still holding those rows, is not read again (the
    result says `unchanged`), unless `reload`.
    """
    source = source or str(csv_path)
    bounds = current_bounds(table)
    min_ratio = settings.min_row_ratio()
    target = f"{RAW_SCHEMA}.{q(table.name)}"
    staged = f"{RAW_SCHEMA}.{q('_incoming_' + table.name)}"
    read_header(table, csv_path, source)  # a missing file or a bad header: refused as before
    with infrastructure_errors(table.name, source):
        before = csv_path.stat()
        loaded_from = f"jaffle-load sha256={sha256 or file_sha256(csv_path)} "
        loaded_from += f"rules={_rules(table, bounds)} content="
        if not reload and (_comment(con, table.name) or "").startswith(loaded_from):
            kept = loaded_from + _content(con, table)
            if _comment(con, table.name) == kept:
                rows = _row_count(con, table.name) or 0
                described = _describe(con, table, target, rows, preview_rows)
                return LoadResult(rows, described.columns, described.preview, True, kept)
    reader = _reader(table, csv_path, source, bounds)

    with infrastructure_errors(table.name, source):
        con.execute(f"create schema if not exists {RAW_SCHEMA}")
        con.execute("begin transaction")
        try:
            previous = _row_count(con, table.name)
            num_rows = _stage(con, reader, staged, bounds)
            if not allow_shrink:
                _check_shrink(reader, num_rows, previous, min_ratio, "the current table")
            after = csv_path.stat()
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                # Written to while it was read (a local RAW_DATA_URI): what was hashed may not
                # be what was loaded. Retried: the next read sees the finished file.
                raise WarehouseError(
                    table.name, source, "the file changed while it was loaded; not loaded"
                )
            con.execute(f"drop table if exists {target}")
            con.execute(f"alter table {staged} rename to {q(table.name)}")
            loaded_from += _content(con, table)
            con.execute(f"comment on table {target} is {sql_str(loaded_from)}")
            result = _describe(con, table, target, num_rows, preview_rows)
            con.execute("commit")
        except BaseException:
            _rollback(con)
            raise
    return LoadResult(num_rows, result.columns, result.preview, False, loaded_from)


def _comment(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """The comment of RAW_SCHEMA.<name>, or None (no table, or no comment)."""
    row = con.execute(
        "select comment from duckdb_tables() where database_name = current_database() "
        "and schema_name = ? and table_name = ?",
        [RAW_SCHEMA, name],
    ).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class DayFile:
    """One day's file of a daily table: the day (its rows' load_day), the local path to read,
    and how to name it in messages (its URL or landing path)."""

    day: dt.date
    path: Path
    source: str


@dataclass(frozen=True)
class DaysResult:
    """What load_raw_days did: rows loaded per day, rows the table now holds, its columns."""

    rows_per_day: dict[dt.date, int]
    table_rows: int
    columns: list[tuple[str, str]]
    preview: list[tuple]

    @property
    def num_rows(self) -> int:
        return sum(self.rows_per_day.values())


def load_raw_days(
    con: duckdb.DuckDBPyConnection,
    table: RawTable,
    files: list[DayFile],
    *,
    allow_shrink: bool = False,
    preview_rows: int = 5,
) -> DaysResult:
    """Replace the rows of each given day of RAW_SCHEMA.<table> with that day's file, all days
    in one transaction, or raise, changing nothing.

    Each day's rows carry `load_day` = the day. Days without a file are not touched (the
    caller leaves them out). Every rule of load_raw_table holds per file; the shrink rule
    compares a file with the rows its day holds now. For a table whose key is unique across
    days (raw_payments), a key that another day holds once the run's days are replaced is
    refused (a day of this run does not clash with the rows its own file replaces).
    """
    bounds = current_bounds(table)
    min_ratio = settings.min_row_ratio()
    target = f"{RAW_SCHEMA}.{q(table.name)}"
    staged = f"{RAW_SCHEMA}.{q('_incoming_' + table.name)}"
    day_col = q(LOAD_DAY_COLUMN)
    columns = ", ".join(q(c) for c in table.columns)
    rows_per_day: dict[dt.date, int] = {}
    source = files[0].source if files else table.name
    with infrastructure_errors(table.name, source):
        con.execute(f"create schema if not exists {RAW_SCHEMA}")
        con.execute("begin transaction")
        try:
            _ensure_daily_table(con, table)
            # Every day of the run goes first, so each file is checked against the table as
            # it will be: the other days, and the run's days already loaded.
            days = sorted({f.day for f in files})
            previous: dict[dt.date, int] = {}
            if days:
                listed = ", ".join(f"date {sql_str(d.isoformat())}" for d in days)
                in_run = (
                    f"{day_col} between date {sql_str(days[0].isoformat())} and "
                    f"date {sql_str(days[-1].isoformat())} and {day_col} in ({listed})"
                )
                previous = dict(
                    con.execute(
                        f"select {day_col}, count(*) from {target} where {in_run} group by 1"
                    ).fetchall()
                )
                con.execute(f"delete from {target} where {in_run}")
            for file in sorted(files, key=lambda f: f.day):
                source = file.source
                reader = _reader(table, file.path, file.source, bounds)
                num_rows = _stage(con, reader, staged, bounds)
                day = f"date {sql_str(file.day.isoformat())}"
                if not allow_shrink:
                    _check_shrink(
                        reader,
                        num_rows,
                        previous.get(file.day, 0),
                        min_ratio,
                        f"day {file.day} of the table",
                    )
                if table.key_unique_across_days:
                    _refuse_keys_of_other_days(con, reader, staged, target, day)
                con.execute(
                    f"insert into {target} ({columns}, {day_col}) "
                    f"select {columns}, {day} from {staged}"
                )
                rows_per_day[file.day] = num_rows
            con.execute(f"drop table if exists {staged}")
            (table_rows,) = con.execute(f"select count(*) from {target}").fetchone() or (0,)
            # The preview shows the last loaded day's rows: ordering the whole history by key
            # would cost a scan of every day.
            last = max(rows_per_day, default=None)
            where = f"{day_col} = date {sql_str(last.isoformat())}" if last else "true"
            described = _describe(con, table, target, 0, preview_rows, where)
            con.execute("commit")
        except BaseException:
            _rollback(con)
            raise
    return DaysResult(rows_per_day, int(table_rows), described.columns, described.preview)


def _ensure_daily_table(con: duckdb.DuckDBPyConnection, table: RawTable) -> None:
    """Create the daily table (the contract's columns plus load_day) if it does not exist.

    A table from before the daily layout (no load_day) is replaced by an empty one in the
    same transaction: its rows name no day, and the day files reload them.
    """
    target = f"{RAW_SCHEMA}.{q(table.name)}"
    if _row_count(con, table.name) is not None:
        (has_day,) = con.execute(
            "select count(*) from information_schema.columns where table_catalog = "
            "current_database() and table_schema = ? and table_name = ? and column_name = ?",
            [RAW_SCHEMA, table.name, LOAD_DAY_COLUMN],
        ).fetchone() or (0,)
        if has_day:
            return
        con.execute(f"drop table {target}")
    columns = ", ".join(f"{q(c)} {t}" for c, t in table.table_columns.items())
    con.execute(f"create table {target} ({columns})")


def _refuse_keys_of_other_days(
    con: duckdb.DuckDBPyConnection, r: _Reader, staged: str, target: str, day: str
) -> None:
    """Refuse a file holding a key that another day's file already loaded.

    The range filter lets DuckDB skip, by their min/max, the row groups of a table whose keys
    grow with the days, so the check costs the day, not the history.
    """
    key = q(r.table.key)
    clash = con.execute(
        f"with s as (select {key} from {staged}), b as (select min({key}) lo, max({key}) hi "
        f"from s) select t.{key}, t.{q(LOAD_DAY_COLUMN)} from {target} t, b where t.{key} "
        f"between b.lo and b.hi and t.{q(LOAD_DAY_COLUMN)} <> {day} and t.{key} in "
        f"(select {key} from s) order by t.{key} limit 1"
    ).fetchone()
    if clash is None:
        return
    value, other_day = clash
    (line,) = con.execute(
        f"select line from (select row_number() over () + 1 as line, {key} from {r.rows_sql}) "
        f"where {key} = {value} limit 1"
    ).fetchone() or (None,)
    raise RawDataError(
        r.table.name,
        r.source,
        f"{r.table.key} {value} is already loaded from the file of {other_day}; each "
        f"{r.table.key} is loaded from one day's file only",
        line,
    )


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
    con: duckdb.DuckDBPyConnection,
    table: RawTable,
    target: str,
    num_rows: int,
    preview_rows: int,
    where: str = "true",
) -> LoadResult:
    cur = con.execute(
        f"select * from {target} where {where} order by {q(table.key)} limit {preview_rows}"
    )
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
