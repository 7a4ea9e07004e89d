"""The jaffle shop dbt models as Dagster assets, built with `dbt build` (tests become checks)."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from jaffle_platform.defs.dbt.project import jaffle_dbt_project
from jaffle_platform.resources import DUCKDB_POOL, DuckDBWarehouse


def _table_metadata(warehouse: DuckDBWarehouse, relations: dict[str, str]) -> dict[str, dict]:
    """Row count and column schema of each built model, read once dbt has released the file."""
    found: dict[str, dict] = {}
    with warehouse.connect(read_only=True) as con:
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


@dbt_assets(
    manifest=jaffle_dbt_project().manifest_path,
    project=jaffle_dbt_project(),
    pool=DUCKDB_POOL,
)
def jaffle_shop_dbt_assets(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: DuckDBWarehouse
) -> Iterator[Any]:
    """dbt build of the jaffle shop: staging views, the orders and customers marts, their tests."""
    invocation = dbt.cli(["build"], context=context, raise_on_error=False)
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
    metadata = _table_metadata(warehouse, relations) if events else {}
    for event in events:
        if isinstance(event, dg.Output | dg.AssetMaterialization):
            model = event.metadata.get("unique_id")
            name = str(model.value).rsplit(".", 1)[-1] if model is not None else None
            if name in metadata:
                event = event.with_metadata({**event.metadata, **metadata[name]})
        yield event
    error = invocation.get_error()
    if error is not None:
        raise error
