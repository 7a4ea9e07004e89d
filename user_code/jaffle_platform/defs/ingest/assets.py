"""raw_customers, raw_orders, raw_payments: CSV files loaded into DuckDB schema jaffle_shop."""

import dagster as dg

from jaffle_platform.defs.ingest.loader import RAW_TABLES, RawDataError, RawTable, load_raw_table
from jaffle_platform.defs.ingest.sources import fetch_raw_file
from jaffle_platform.resources import DUCKDB_POOL, DuckDBWarehouse


def _preview_markdown(columns: list[tuple[str, str]], rows: list[tuple]) -> str:
    head = "| " + " | ".join(name for name, _ in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def build_raw_asset(table: RawTable) -> dg.AssetsDefinition:
    @dg.asset(
        name=table.name,
        group_name="ingest",
        kinds={"duckdb", "csv"},
        pool=DUCKDB_POOL,
        description=(
            f"{table.description} Loaded from {table.file_name} under RAW_DATA_URI into "
            f"jaffle_shop.{table.name}; a bad file is refused and the previous table kept."
        ),
    )
    def _raw_asset(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse):
        try:
            with (
                fetch_raw_file(table.name, table.file_name) as (path, source),
                warehouse.connect() as con,
            ):
                result = load_raw_table(con, table, path, source)
        except RawDataError as exc:
            raise dg.Failure(
                description=str(exc),
                metadata={
                    "file": exc.source,
                    "problem": exc.problem,
                    "line": exc.line if exc.line is not None else "-",
                },
                allow_retries=False,
            ) from None
        context.log.info(f"loaded {result.num_rows} rows from {source}")
        return dg.MaterializeResult(
            metadata={
                "num_rows": result.num_rows,
                "dagster/row_count": result.num_rows,
                "source": source,
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(name, dtype) for name, dtype in result.columns]
                ),
                "preview": dg.MetadataValue.md(_preview_markdown(result.columns, result.preview)),
            }
        )

    return _raw_asset


raw_assets = [build_raw_asset(t) for t in RAW_TABLES.values()]
