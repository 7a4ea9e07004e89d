"""'Materialize all' through the GraphQL API: one run container, the marts, the chart."""

from __future__ import annotations

import urllib.request

import pytest

from tests.stack.stack import CHART_METADATA_QUERY, ObservedRun, Stack, csv_rows

pytestmark = pytest.mark.stack

ASSETS = {
    "raw_customers",
    "raw_orders",
    "raw_payments",
    "stg_customers",
    "stg_orders",
    "stg_payments",
    "orders",
    "customers",
    "order_count_chart",
}


def test_location_loads_with_every_asset(stack: Stack) -> None:
    entry = stack.location_entry()
    assert entry["loadStatus"] == "LOADED"
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    keys = {
        "/".join(n["assetKey"]["path"]) for r in location["repositories"] for n in r["assetNodes"]
    }
    assert keys >= ASSETS, f"missing: {ASSETS - keys}"


def test_materialize_all_succeeds_in_its_own_run_container(materialized: ObservedRun) -> None:
    assert materialized.run["status"] == "SUCCESS"
    assert materialized.containers_seen, "no container labelled with the run id was seen"
    container_id = materialized.run["tagmap"].get("docker/container_id", "")
    assert any(container_id.startswith(c) for c in materialized.containers_seen)
    assert materialized.containers_after == [], "the run container was not removed"
    print(f"materialize all: {materialized.seconds:.1f}s")


def test_warehouse_holds_the_marts(stack: Stack, materialized: ObservedRun) -> None:
    assert materialized.run["status"] == "SUCCESS"
    stack.wait_idle()
    counts = stack.warehouse_counts(["customers", "orders"])
    assert counts == {"customers": csv_rows("raw_customers"), "orders": csv_rows("raw_orders")}


def test_chart_link_in_metadata_serves_the_chart(stack: Stack, materialized: ObservedRun) -> None:
    (node,) = stack.graphql(CHART_METADATA_QUERY)["assetNodes"]
    (latest,) = node["assetMaterializations"]
    assert latest["runId"] == materialized.run_id
    urls = [e["url"] for e in latest["metadataEntries"] if e["label"] == "chart"]
    assert urls == [f"{stack.env['REPORTS_BASE_URL']}/order_count_chart.html"]
    with urllib.request.urlopen(urls[0], timeout=30) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "text/html"
        body = response.read().decode()
    assert "Orders per customer" in body and "plotly" in body.lower()
