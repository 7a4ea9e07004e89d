"""The dbt docs site, refreshed after each build for the reports server at /dbt/.

It is what `dbt docs generate --no-compile --static` makes, made without a second dbt process
(about 5 s of CPU, half a refresh on the sample data): the build's own manifest.json, a
catalog.json read with dbt-duckdb's catalog query on the connection the build's metadata already
uses, both inlined into dbt's docs page. dbt's classes write the catalog; a test compares it with
dbt's own.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
from dbt.artifacts.schemas.catalog import CatalogArtifact
from dbt.task.docs import DOCS_INDEX_FILE_PATH
from dbt_common.contracts.metadata import (
    CatalogKey,
    CatalogTable,
    ColumnMetadata,
    StatsItem,
    TableMetadata,
)
from dbt_common.utils.encoding import JSONEncoder

from jaffle_platform.defs.publish.atomic import publish_dir

DOCS_DIR = "dbt"
RELATIONAL = {"model", "seed", "snapshot"}

# dbt-duckdb's duckdb__get_catalog (dbt/include/duckdb/macros/catalog.sql), for every schema.
CATALOG_SQL = """
with tables as (
    select database_name as table_database, schema_name as table_schema,
        table_name, 'BASE TABLE' as table_type, comment as table_comment
    from duckdb_tables()
    union all
    select database_name, schema_name, view_name, 'VIEW', comment
    from duckdb_views()
),
columns as (
    select database_name as table_database, schema_name as table_schema, table_name,
        column_name, column_index, data_type as column_type, comment as column_comment
    from duckdb_columns()
)
select tables.table_database, tables.table_schema, tables.table_name, tables.table_type,
    tables.table_comment, columns.column_name, columns.column_index, columns.column_type,
    columns.column_comment
from tables
join columns using (table_database, table_schema, table_name)
order by table_schema, table_name, column_index
"""

NO_STATS = {
    "has_stats": StatsItem(
        id="has_stats",
        label="Has Stats?",
        value=False,
        include=False,
        description="Indicates whether there are statistics for this table",
    )
}


def _key(database: str | None, schema: str, name: str) -> CatalogKey:
    return CatalogKey(database.lower() if database else None, schema.lower(), name.lower())


def build_catalog(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any]) -> CatalogArtifact:
    """catalog.json as dbt docs generate writes it: every relation of the manifest's nodes and
    sources that exists in the warehouse, with its columns (dbt's own mapping rules)."""
    node_ids: dict[CatalogKey, str] = {}
    source_ids: dict[CatalogKey, list[str]] = {}
    used_schemas: set[str] = set()
    for unique_id, node in manifest.get("nodes", {}).items():
        node_ids[_key(node.get("database"), node["schema"], node.get("alias") or node["name"])] = (
            unique_id
        )
        materialized = node.get("config", {}).get("materialized")
        if node.get("resource_type") in RELATIONAL and materialized != "ephemeral":
            used_schemas.add(node["schema"].lower())
    for unique_id, source in manifest.get("sources", {}).items():
        key = _key(source.get("database"), source["schema"], source["identifier"])
        source_ids.setdefault(key, []).append(unique_id)
        used_schemas.add(source["schema"].lower())

    tables: dict[CatalogKey, CatalogTable] = {}
    for row in con.execute(CATALOG_SQL).fetchall():
        database, schema, name, kind, comment, column, index, column_type, column_comment = row
        if schema.lower() not in used_schemas:
            continue
        key = CatalogKey(database, schema, name)
        if key not in tables:
            metadata = TableMetadata(
                type=kind, schema=schema, name=name, database=database, comment=comment
            )
            tables[key] = CatalogTable(metadata=metadata, columns={}, stats=dict(NO_STATS))
        tables[key].columns[column] = ColumnMetadata(
            type=column_type, index=int(index), name=column, comment=column_comment
        )

    nodes: dict[str, CatalogTable] = {}
    sources: dict[str, CatalogTable] = {}
    for table in tables.values():
        unique_id = node_ids.get(table.key())
        if unique_id is not None:
            nodes[unique_id] = replace(table, unique_id=unique_id)
        for source_id in source_ids.get(table.key(), []):
            sources[source_id] = replace(table, unique_id=source_id)
    return CatalogArtifact.from_results(
        generated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        nodes=nodes,
        sources=sources,
        compile_results=None,
        errors=None,
    )


def catalog_json(catalog: CatalogArtifact) -> str:
    return json.dumps(catalog.to_dict(omit_none=False, context={"artifact": True}), cls=JSONEncoder)


def static_page(manifest_text: str, catalog_text: str) -> str:
    """dbt's docs page with the manifest and catalog inlined, as `dbt docs generate --static`."""
    page = Path(DOCS_INDEX_FILE_PATH).read_text(encoding="utf-8")

    # "</" only occurs inside JSON strings, where "<\/" means the same; unescaped, a model
    # description holding "</script>" would end the page's script early.
    def inline(text: str) -> str:
        return text.replace("</", "<\\/")

    for marker, data in (
        ('"MANIFEST.JSON INLINE DATA"', manifest_text),
        ('"CATALOG.JSON INLINE DATA"', catalog_text),
    ):
        if marker not in page:
            raise ValueError(f"{DOCS_INDEX_FILE_PATH} has no {marker} placeholder")
        page = page.replace(marker, inline(data), 1)
    return page


def publish_docs(con: duckdb.DuckDBPyConnection, target_path: Path, reports_dir: Path) -> Path:
    """Writes REPORTS_DIR/dbt/ (index.html, manifest.json, catalog.json) from the build in
    `target_path`, in one step; returns the site's index.html."""
    manifest_text = (target_path / "manifest.json").read_text(encoding="utf-8")
    catalog_text = catalog_json(build_catalog(con, json.loads(manifest_text)))
    files = {
        "index.html": static_page(manifest_text, catalog_text).encode(),
        "manifest.json": manifest_text.encode(),
        "catalog.json": catalog_text.encode(),
    }
    publish_dir(reports_dir, DOCS_DIR, files)
    return reports_dir / DOCS_DIR / "index.html"


def docs_page(unique_id: str) -> str:
    """The site-relative route of a node's page: `#!/model/model.jaffle_shop.customers`."""
    return f"#!/{unique_id.split('.', 1)[0]}/{unique_id}"
