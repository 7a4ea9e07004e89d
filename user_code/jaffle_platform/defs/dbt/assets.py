"""The jaffle shop dbt models as Dagster assets, built with `dbt build` (tests become checks)."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource, dbt_assets

from jaffle_platform import settings
from jaffle_platform.defs.dbt.docs import DOCS_DIR, docs_page, publish_docs
from jaffle_platform.defs.dbt.project import jaffle_dbt_project
from jaffle_platform.defs.dbt.runs import dbt_build_args, full_refresh_requested, run_window
from jaffle_platform.defs.ingest.contract import RAW_SCHEMA, RAW_TABLES
from jaffle_platform.partitions import daily_partitions
from jaffle_platform.resources import DUCKDB_POOL, DuckDBWarehouse


def _table_metadata(con: duckdb.DuckDBPyConnection, relations: dict[str, str]) -> dict[str, dict]:
    """Row count and column schema of each built model, read once dbt has released the file."""
    found: dict[str, dict] = {}
    for model, relation in relations.items():
        schema, name = relation.split(".", 1)
        columns = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, name],
        ).fetchall()
        if not columns:
            continue
        (rows,) = con.execute(f'select count(*) from "{schema}"."{name}"').fetchone() or (0,)
        found[model] = {
            "dagster/row_count": rows,
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(c, t) for c, t in columns]
            ),
        }
    return found


def _refresh_docs(
    context: dg.AssetExecutionContext, con: duckdb.DuckDBPyConnection, target_path: Path
) -> str | None:
    """Publishes the docs site of this build; returns why it could not, if it could not.

    Docs never fail the build: the models are built and tested by now, and failing this step
    would skip the chart and the snapshot downstream. A failure is a warning in the run's logs
    and `dbt_docs_error` in the models' metadata; the previous site stays as it was.
    """
    started = time.perf_counter()
    try:
        index = publish_docs(con, target_path, settings.reports_dir())
    except Exception as exc:  # whatever it is, the build's results stand
        error = f"dbt docs not refreshed ({type(exc).__name__}: {exc}); the previous site stays"
        context.log.warning(error)
        return error
    context.log.info(f"dbt docs: wrote {index} in {time.perf_counter() - started:.2f} s")
    return None


def _docs_link(unique_id: str) -> dg.MetadataValue | None:
    """The node's page on the docs site: a URL when REPORTS_BASE_URL is set, else the file."""
    index = settings.reports_dir() / DOCS_DIR / "index.html"
    if not index.exists():
        return None
    base_url = settings.reports_base_url()
    if base_url:
        return dg.MetadataValue.url(f"{base_url}/{DOCS_DIR}/{docs_page(unique_id)}")
    return dg.MetadataValue.path(str(index))


def _require_raw_tables(warehouse: DuckDBWarehouse) -> None:
    """Fails, naming what to do, when a raw table is not there: dbt would fail on its own
    with a catalog error deep in its log (a day's files landed before any raw_customers.csv)."""
    wanted = sorted(RAW_TABLES)
    found: set[str] = set()
    path = settings.duckdb_path()
    try:
        if path.exists():
            with warehouse.connect(read_only=True) as con:
                found = {
                    name
                    for (name,) in con.execute(
                        "select table_name from information_schema.tables where table_catalog "
                        "= current_database() and table_schema = ?",
                        [RAW_SCHEMA],
                    ).fetchall()
                }
    except duckdb.Error as exc:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise dg.Failure(
            description=f"could not open {path} (infrastructure, not the data): {first_line}"
        ) from exc
    missing = [name for name in wanted if name not in found]
    if missing:
        raise dg.Failure(
            description=(
                f"{', '.join(missing)}: not in {path} (never loaded, or dropped), so dbt has "
                "nothing to build from. Load it first: land its file in the landing folder "
                "(raw_customers.csv, or a day's raw_orders/ and raw_payments/ files), or "
                "materialize it from RAW_DATA_URI."
            ),
            metadata={"missing": ", ".join(missing)},
            allow_retries=False,
        )


@dbt_assets(
    manifest=jaffle_dbt_project().manifest_path,
    project=jaffle_dbt_project(),
    pool=DUCKDB_POOL,
    partitions_def=daily_partitions(),
    # A range of days is one run and one dbt build: dbt's start-up (4-6 s) is paid once.
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def jaffle_shop_dbt_assets(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: DuckDBWarehouse
) -> Iterator[Any]:
    """dbt build of the jaffle shop for the run's days: staging views, the orders and customers
    marts updated with the rows loaded those days, their tests on those rows; then the dbt docs
    site for the reports server (/dbt/). Run tag jaffle/full_refresh=true rebuilds everything."""
    _require_raw_tables(warehouse)
    window = run_window(context)
    full_refresh = full_refresh_requested(context.run.tags)
    args = dbt_build_args(window, full_refresh, checks_only=not context.selected_asset_keys)
    if full_refresh:
        context.log.info("full refresh: every model rebuilt from all days, every test on all rows")
    elif window is None:
        context.log.info("no partition: every day reconciled, every test on all rows")
    else:
        context.log.info(f"load days [{window.start}, {window.end}): dbt {' '.join(args)}")
    invocation = dbt.cli(args, context=context, raise_on_error=False)
    # DuckDB lets one process open the file, and dbt holds it until it exits: so collect the
    # events, then read row counts and schemas ourselves (dagster-dbt's fetch_row_counts would
    # open the file from this process while dbt still has it).
    events = list(invocation.stream())
    manifest_nodes = invocation.manifest.get("nodes", {})
    relations = {
        node["name"]: f"{node['schema']}.{node.get('alias') or node['name']}"
        for node in manifest_nodes.values()
        if node.get("resource_type") == "model"
    }
    metadata: dict[str, dict] = {}
    docs_error: str | None = None
    if events:
        with warehouse.connect(read_only=True) as con:
            metadata = _table_metadata(con, relations)
            # Still under the duckdb pool: the catalog sees the tables this build left.
            if invocation.is_successful():
                docs_error = _refresh_docs(context, con, invocation.target_path)
    for event in events:
        if isinstance(event, dg.Output | dg.AssetMaterialization):
            model = event.metadata.get("unique_id")
            unique_id = str(model.value) if model is not None else None
            extra: dict[str, Any] = {}
            if unique_id is not None:
                extra.update(metadata.get(unique_id.rsplit(".", 1)[-1], {}))
                link = _docs_link(unique_id)
                if link is not None:
                    extra["dbt_docs"] = link
                if docs_error is not None:
                    extra["dbt_docs_error"] = docs_error
            if extra:
                event = event.with_metadata({**event.metadata, **extra})
        yield event
    error = invocation.get_error()
    if error is not None:
        raise error
