"""warehouse_snapshot: a read-only copy of the warehouse, for readers who never wait for runs."""

import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from jaffle_platform import settings
from jaffle_platform.defs.publish.atomic import publish_copy
from jaffle_platform.partitions import daily_partitions
from jaffle_platform.resources import DUCKDB_POOL, DuckDBWarehouse

SNAPSHOT_FILE = "warehouse.duckdb"


@dataclass(frozen=True)
class SnapshotContents:
    tables: list[tuple[str, str, int]]  # schema, table, rows
    views: int


def read_contents(path: Path) -> SnapshotContents:
    """Opens a snapshot as its readers will (read-only) and lists what it holds."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            (schema, name, int(rows))
            for schema, name, rows in con.execute(
                "select schema_name, table_name, estimated_size from duckdb_tables() "
                "where database_name = current_database() order by schema_name, table_name"
            ).fetchall()
        ]
        (views,) = con.execute(
            "select count(*) from duckdb_views() "
            "where database_name = current_database() and not internal"
        ).fetchone() or (0,)
    finally:
        con.close()
    return SnapshotContents(tables, int(views))


def take_snapshot(warehouse: DuckDBWarehouse, target: Path) -> SnapshotContents:
    """Checkpoints the warehouse and publishes a copy at `target` (see publish_copy)."""
    # Everything committed goes into the file itself, and the write-ahead log is emptied, so a
    # copy of the file alone is the whole warehouse.
    with warehouse.connect() as con:
        con.execute("checkpoint")
    source = settings.duckdb_path()
    # A read-only connection holds DuckDB's shared lock for the whole copy: no process, in
    # Dagster or not, can open the file for writing meanwhile.
    with warehouse.connect(read_only=True):
        wal = source.with_name(source.name + ".wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise RuntimeError(f"{wal} is not empty after a checkpoint: not copying {source}")
        # A write-ahead log left beside the snapshot (someone opened it for writing, as root)
        # would be replayed into the new snapshot by whoever opens it next.
        target.with_name(target.name + ".wal").unlink(missing_ok=True)
        return publish_copy(source, target, read_contents)


def contents_markdown(contents: SnapshotContents) -> str:
    rows = [f"| {schema}.{name} | {n} |" for schema, name, n in contents.tables]
    return "\n".join(["| table | rows |", "|---|---|", *rows])


@dg.asset(
    group_name="publish",
    kinds={"duckdb"},
    deps=[dg.AssetKey("customers"), dg.AssetKey("orders")],
    # The copy must see no writer: the checkpoint writes, and the copy is of a still file.
    pool=DUCKDB_POOL,
    # Partitioned like the marts, so a day or a range of days runs through to here as one
    # run; it copies the whole warehouse whatever the days.
    partitions_def=daily_partitions(),
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def warehouse_snapshot(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse):
    """Read-only copy of the whole warehouse, SNAPSHOT_DIR/warehouse.duckdb, replaced at once
    after each refresh: open it with `duckdb -readonly` at any time, even while a run writes."""
    target = settings.snapshot_dir() / SNAPSHOT_FILE
    started = time.perf_counter()
    try:
        contents = take_snapshot(warehouse, target)
    except duckdb.IOException as exc:
        # Another process (outside Dagster: the pool keeps runs apart) has the warehouse open.
        if "lock" not in str(exc).lower():
            raise
        raise dg.RetryRequested(max_retries=2, seconds_to_wait=5) from exc
    seconds = time.perf_counter() - started
    size = target.stat().st_size
    context.log.info(f"published {target} ({size / 1e6:.1f} MB) in {seconds:.2f} s")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "size_bytes": size,
            "seconds": round(seconds, 3),
            "views": contents.views,
            "tables": dg.MetadataValue.md(contents_markdown(contents)),
        }
    )
