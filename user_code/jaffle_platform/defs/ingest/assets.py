"""raw_customers, raw_orders, raw_payments: CSV files loaded into DuckDB schema jaffle_shop.

All three are daily-partitioned with a single-run backfill policy, so a range of days is one run.
raw_orders and raw_payments load the files of the run's days (`raw_orders/YYYY-MM-DD.csv`), each
replacing its day's rows; raw_customers loads the full list (`raw_customers.csv`) whatever the
days, unless it is the file the table was loaded from (its fingerprint is the table's comment).
"""

# No `from __future__ import annotations`: Dagster reads the config and resource parameter
# annotations at definition time.
import datetime as dt
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dagster as dg

from jaffle_platform import settings
from jaffle_platform.defs.dbt.runs import full_refresh_requested
from jaffle_platform.defs.ingest.contract import LoadProblem
from jaffle_platform.defs.ingest.days import describe_days, window_days
from jaffle_platform.defs.ingest.landed import copy_landed_file
from jaffle_platform.defs.ingest.loader import (
    RAW_TABLES,
    DayFile,
    RawDataError,
    RawTable,
    infrastructure_errors,
    load_raw_days,
    load_raw_table,
)
from jaffle_platform.defs.ingest.sources import DownloadError, fetch_raw_file, raw_file_absent
from jaffle_platform.partitions import daily_partitions
from jaffle_platform.resources import DUCKDB_POOL, DuckDBWarehouse

# A run tag that lets every load in the run replace a table with fewer rows than it holds.
ALLOW_SHRINK_TAG = "jaffle/allow_shrink"

# For infrastructure failures only (network, disk, lock): a refused file raises
# Failure(allow_retries=False), which Dagster does not retry whatever this policy says.
INFRA_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


class RawLoadConfig(dg.Config):
    """Run config of one raw load. `allow_shrink`: accept a file with fewer rows than the table
    (for a daily table: than its day), as run tag jaffle/allow_shrink=true does. The landing
    sensor sets the other three: load the file from LANDING_DIR (`<table>.csv`, or the run's
    day's `<table>/YYYY-MM-DD.csv`) instead of RAW_DATA_URI, only if its size and mtime are
    still these."""

    from_landing: bool = False
    expected_size: int | None = None
    expected_mtime_ns: int | None = None
    allow_shrink: bool = False


def _preview_markdown(columns: list[tuple[str, str]], rows: list[tuple]) -> str:
    head = "| " + " | ".join(name for name, _ in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


@contextmanager
def raw_file(
    table: RawTable, config: RawLoadConfig, file_name: str | None = None
) -> Iterator[tuple[Path, str, dict]]:
    """Yield (local path to load, how to name it, extra metadata): a private copy of the landed
    file the sensor saw; else, for other runs, the file from RAW_DATA_URI when it is set, or the
    file in the landing folder when there is one (so the daily refresh reloads what was landed
    rather than the sample data), or the sample data. `file_name`: a day's file (default: the
    table's snapshot file). A file that does not exist raises RawDataError (file not found) or,
    over http(s), DownloadError with status 404."""
    file_name = file_name or table.file_name
    if not config.from_landing:
        landed = _landed_version(file_name)
        if landed is None:
            with fetch_raw_file(table.name, file_name) as (path, source):
                yield path, source, {}
            return
        config = config.model_copy(
            update={"expected_size": landed[0], "expected_mtime_ns": landed[1]}
        )
    if config.expected_size is None or config.expected_mtime_ns is None:
        raise dg.Failure(
            description=f"{table.name}: from_landing needs expected_size and expected_mtime_ns",
            allow_retries=False,
        )
    tmp = Path(tempfile.mkdtemp(prefix="jaffle-landed-"))
    try:
        copy = tmp / Path(file_name).name
        source, sha256 = copy_landed_file(
            table.name, file_name, config.expected_size, config.expected_mtime_ns, copy
        )
        yield copy, source, {"sha256": sha256, "size_bytes": config.expected_size}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _landed_version(file_name: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of the regular file in the landing folder, unless RAW_DATA_URI is set
    (it then wins) or there is none."""
    if settings.raw_data_uri_configured():
        return None
    path = settings.landing_dir() / file_name
    try:
        if path.parent != settings.landing_dir() and path.parent.is_symlink():
            return None
        st = path.lstat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


def day_files(
    stack: ExitStack, table: RawTable, config: RawLoadConfig, days: list[dt.date]
) -> tuple[list[DayFile], list[dt.date], dict]:
    """(the files of `days` there are, the days without a file, extra metadata), each file held
    open by `stack` (private copies and downloads are removed when it closes)."""
    if config.from_landing and len(days) != 1:
        raise dg.Failure(
            description=f"{table.name}: from_landing loads one day; this run covers {len(days)}",
            allow_retries=False,
        )
    files: list[DayFile] = []
    missing: list[dt.date] = []
    extra: dict = {}
    for day in days:
        name = table.day_file_name(day)
        if not config.from_landing and _landed_version(name) is None and _absent_locally(name):
            missing.append(day)
            continue
        try:
            path, source, extra = stack.enter_context(raw_file(table, config, name))
        except DownloadError as exc:
            if not raw_file_absent(exc):
                raise
            missing.append(day)
            continue
        files.append(DayFile(day, path, source))
    return files, missing, extra if len(files) == 1 else {}


def _absent_locally(file_name: str) -> bool:
    """True when RAW_DATA_URI is a local folder without this file (a day without a file)."""
    if settings.raw_data_is_remote():
        return False
    return not (Path(settings.raw_data_uri()) / file_name).is_file()


def allow_shrink(context: dg.AssetExecutionContext, config: RawLoadConfig) -> bool:
    return config.allow_shrink or context.run.tags.get(ALLOW_SHRINK_TAG, "").lower() == "true"


def load_failure(exc: LoadProblem) -> dg.Failure:
    """The step's failure, with file, problem and line as metadata. Retried (by the asset's
    retry policy) only when asking again may help: an infrastructure failure or a network error,
    never a refused file, a landed file that changed, or a download refusal (size cap, foreign
    redirect, 404)."""
    metadata: dict[str, str | int] = {
        "url" if isinstance(exc, DownloadError) else "file": exc.source,
        "problem": exc.problem,
    }
    if isinstance(exc, RawDataError):
        metadata["line"] = exc.line if exc.line is not None else "-"
    return dg.Failure(description=str(exc), metadata=metadata, allow_retries=exc.retryable)


def _load_snapshot(
    context: dg.AssetExecutionContext,
    table: RawTable,
    config: RawLoadConfig,
    warehouse: DuckDBWarehouse,
) -> dg.MaterializeResult:
    shrink = allow_shrink(context, config)
    # A full refresh reads every file again; other runs skip a file the table was loaded from.
    reload = full_refresh_requested(context.run.tags)
    try:
        with (
            raw_file(table, config) as (path, source, extra),
            # A warehouse file locked by another process fails here, before the loader.
            infrastructure_errors(table.name, source),
            warehouse.connect() as con,
        ):
            result = load_raw_table(
                con,
                table,
                path,
                source,
                allow_shrink=shrink,
                reload=reload,
                # A landed file's private copy was hashed as it was made.
                sha256=extra.get("sha256"),
            )
    except LoadProblem as exc:
        raise load_failure(exc) from None
    if result.unchanged:
        context.log.info(
            f"{source} is the file {table.name} was loaded from, under the same rules "
            f"({result.fingerprint}): kept its {result.num_rows} rows"
        )
    else:
        context.log.info(f"loaded {result.num_rows} rows from {source}")
    return dg.MaterializeResult(
        metadata={
            "num_rows": result.num_rows,
            "dagster/row_count": result.num_rows,
            "source": source,
            "unchanged": result.unchanged,
            "loaded_from": result.fingerprint,
            "allow_shrink": shrink,
            **extra,
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name, dtype) for name, dtype in result.columns]
            ),
            "preview": dg.MetadataValue.md(_preview_markdown(result.columns, result.preview)),
        }
    )


def _load_days(
    context: dg.AssetExecutionContext,
    table: RawTable,
    config: RawLoadConfig,
    warehouse: DuckDBWarehouse,
) -> dg.MaterializeResult:
    shrink = allow_shrink(context, config)
    days = window_days(context)
    try:
        with ExitStack() as stack:
            files, missing, extra = day_files(stack, table, config, days)
            where = files[0].source if len(files) == 1 else settings.raw_data_uri()
            with infrastructure_errors(table.name, where), warehouse.connect() as con:
                result = load_raw_days(con, table, files, allow_shrink=shrink)
    except LoadProblem as exc:
        raise load_failure(exc) from None
    if missing:
        # Never a reason to delete rows: the day may come later, or had no activity.
        context.log.info(
            f"{table.name}: no file for {describe_days(missing)}; those days were skipped and "
            "their rows (if any) kept"
        )
    context.log.info(
        f"{table.name}: loaded {result.num_rows} rows from {len(files)} file(s) "
        f"({describe_days(list(result.rows_per_day))}); the table holds {result.table_rows} rows"
    )
    window = context.partition_time_window
    return dg.MaterializeResult(
        metadata={
            "num_rows": result.num_rows,
            "dagster/row_count": result.table_rows,
            "window": f"[{window.start.date()}, {window.end.date()})",
            "loaded_days": describe_days(list(result.rows_per_day)),
            "missing_days": describe_days(missing),
            "num_missing_days": len(missing),
            "source": files[0].source if len(files) == 1 else settings.raw_data_uri(),
            "allow_shrink": shrink,
            **extra,
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name, dtype) for name, dtype in result.columns]
            ),
            "preview": dg.MetadataValue.md(_preview_markdown(result.columns, result.preview)),
        }
    )


def build_raw_asset(table: RawTable) -> dg.AssetsDefinition:
    where = (
        f"{table.name}/YYYY-MM-DD.csv (the files of the run's days; a day without a file is "
        "skipped, its rows kept)"
        if table.daily
        else f"{table.file_name} (the full list, whatever the run's days)"
    )

    @dg.asset(
        name=table.name,
        group_name="ingest",
        kinds={"duckdb", "csv"},
        pool=DUCKDB_POOL,
        retry_policy=INFRA_RETRY_POLICY,
        partitions_def=daily_partitions(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=(
            f"{table.description} Loaded from {where} under RAW_DATA_URI (schedule, manual runs) "
            f"or LANDING_DIR (landing sensor) into jaffle_shop.{table.name}; a bad file is "
            "refused and the previous table kept."
        ),
    )
    def _raw_asset(
        context: dg.AssetExecutionContext, config: RawLoadConfig, warehouse: DuckDBWarehouse
    ):
        if table.daily:
            return _load_days(context, table, config, warehouse)
        return _load_snapshot(context, table, config, warehouse)

    return _raw_asset


raw_assets = [build_raw_asset(t) for t in RAW_TABLES.values()]
