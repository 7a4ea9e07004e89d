"""order_count_chart: how many orders customers place, as a self-contained plotly page."""

import os

import dagster as dg
import plotly.graph_objects as go

from jaffle_platform import settings
from jaffle_platform.partitions import daily_partitions
from jaffle_platform.resources import DUCKDB_POOL, DuckDBWarehouse

CHART_FILE = "order_count_chart.html"


def histogram_markdown(counts: list[tuple[int, int]]) -> str:
    rows = [f"| {orders} | {customers} |" for orders, customers in counts]
    return "\n".join(["| orders per customer | customers |", "|---|---|", *rows])


@dg.asset(
    group_name="reporting",
    kinds={"plotly", "html"},
    deps=[dg.AssetKey("customers")],
    # Reading needs the file unlocked too: DuckDB locks it for the whole writing process.
    pool=DUCKDB_POOL,
    # Partitioned like the marts, so a day or a range of days runs through to here as one
    # run; it redraws from the whole table whatever the days.
    partitions_def=daily_partitions(),
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def order_count_chart(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse):
    """Histogram of orders per customer, written to REPORTS_DIR/order_count_chart.html."""
    with warehouse.connect(read_only=True) as con:
        counts = [
            (int(n), int(c))
            for n, c in con.execute(
                "select number_of_orders, count(*) from main.customers "
                "group by number_of_orders order by number_of_orders"
            ).fetchall()
        ]
    # Binned in DuckDB, drawn as bars: the page stays small however many customers there are.
    fig = go.Figure(
        go.Bar(x=[n for n, _ in counts], y=[c for _, c in counts], marker_color="#e4572e")
    )
    fig.update_layout(
        title="Orders per customer",
        xaxis_title="number of orders",
        yaxis_title="customers",
        bargap=0.05,
        template="plotly_white",
    )
    out_dir = settings.reports_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CHART_FILE
    tmp = path.with_suffix(".html.tmp")
    fig.write_html(tmp, include_plotlyjs=True, full_html=True)
    os.replace(tmp, path)
    total = sum(c for _, c in counts)
    context.log.info(f"wrote {path} ({total} customers)")
    metadata: dict[str, object] = {
        "path": dg.MetadataValue.path(str(path)),
        "customers": total,
        "histogram": dg.MetadataValue.md(histogram_markdown(counts)),
    }
    base_url = settings.reports_base_url()
    if base_url:
        metadata["chart"] = dg.MetadataValue.url(f"{base_url}/{CHART_FILE}")
    return dg.MaterializeResult(metadata=metadata)  # type: ignore[arg-type]
