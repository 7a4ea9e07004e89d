"""raw_customers, raw_orders, raw_payments: CSV files loaded into DuckDB schema jaffle_shop."""

# No `from __future__ import annotations`: Dagster reads the config and resource parameter
# annotations at definition time.
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from jaffle_platform import settings
from jaffle_platform.defs.ingest.contract import LoadProblem
from jaffle_platform.defs.ingest.landed import copy_landed_file
from jaffle_platform.defs.ingest.loader import (
    RAW_TABLES,
    RawDataError,
    RawTable,
    infrastructure_errors,
    load_raw_table,
)
from jaffle_platform.defs.ingest.sources import DownloadError, fetch_raw_file
from jaffle_platform.resources import DUCKDB_POOL, DuckDBWarehouse

# A run tag that lets every load in the run replace a table with fewer rows than it holds.
ALLOW_SHRINK_TAG = "jaffle/allow_shrink"

# For infrastructure failures only (network, disk, lock): a refused file raises
# Failure(allow_retries=False), which Dagster does not retry whatever this policy says.
INFRA_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


class RawLoadConfig(dg.Config):
    """Run config of one raw load. `allow_shrink`: accept a file with fewer rows than the table
    (same as run tag jaffle/allow_shrink=true). The landing sensor sets the other three: load
    LANDING_DIR/<table>.csv instead of RAW_DATA_URI, only if its size and mtime are still these."""

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
def raw_file(table: RawTable, config: RawLoadConfig) -> Iterator[tuple[Path, str, dict]]:
    """Yield (local path to load, how to name it, extra metadata): a private copy of the landed
    file the sensor saw; else, for other runs, the file from RAW_DATA_URI when it is set, or the
    table's file in the landing folder when there is one (so the daily refresh reloads what was
    landed rather than the sample data), or the sample data."""
    if not config.from_landing:
        landed = _landed_version(table)
        if landed is None:
            with fetch_raw_file(table.name, table.file_name) as (path, source):
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
        copy = tmp / table.file_name
        source, sha256 = copy_landed_file(
            table.name, table.file_name, config.expected_size, config.expected_mtime_ns, copy
        )
        yield copy, source, {"sha256": sha256, "size_bytes": config.expected_size}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _landed_version(table: RawTable) -> tuple[int, int] | None:
    """(size, mtime_ns) of the table's regular file in the landing folder, unless RAW_DATA_URI
    is set (it then wins) or there is none."""
    if settings.raw_data_uri_configured():
        return None
    try:
        st = (settings.landing_dir() / table.file_name).lstat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


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


def build_raw_asset(table: RawTable) -> dg.AssetsDefinition:
    @dg.asset(
        name=table.name,
        group_name="ingest",
        kinds={"duckdb", "csv"},
        pool=DUCKDB_POOL,
        retry_policy=INFRA_RETRY_POLICY,
        description=(
            f"{table.description} Loaded from {table.file_name} under RAW_DATA_URI (schedule, "
            f"manual runs) or LANDING_DIR (landing sensor) into jaffle_shop.{table.name}; a bad "
            "file is refused and the previous table kept."
        ),
    )
    def _raw_asset(
        context: dg.AssetExecutionContext, config: RawLoadConfig, warehouse: DuckDBWarehouse
    ):
        shrink = allow_shrink(context, config)
        try:
            with (
                raw_file(table, config) as (path, source, extra),
                # A warehouse file locked by another process fails here, before the loader.
                infrastructure_errors(table.name, source),
                warehouse.connect() as con,
            ):
                result = load_raw_table(con, table, path, source, allow_shrink=shrink)
        except LoadProblem as exc:
            raise load_failure(exc) from None
        context.log.info(f"loaded {result.num_rows} rows from {source}")
        return dg.MaterializeResult(
            metadata={
                "num_rows": result.num_rows,
                "dagster/row_count": result.num_rows,
                "source": source,
                "allow_shrink": shrink,
                **extra,
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(name, dtype) for name, dtype in result.columns]
                ),
                "preview": dg.MetadataValue.md(_preview_markdown(result.columns, result.preview)),
            }
        )

    return _raw_asset


raw_assets = [build_raw_asset(t) for t in RAW_TABLES.values()]
