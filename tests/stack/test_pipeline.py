"""'Materialize all' through the GraphQL API: one run container, the marts, the chart."""

from __future__ import annotations

import urllib.request

import pytest

from jaffle_stack.stack import ObservedRun, Stack
from tests import ASSETS

pytestmark = pytest.mark.stack

# The materializations of one run, with their metadata links.
RUN_MATERIALIZATIONS = """
query($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      assetMaterializations {
        assetKey { path }
        metadataEntries { label __typename ... on UrlMetadataEntry { url } }
      }
    }
  }
}
"""


def test_location_loads_with_every_asset(stack: Stack) -> None:
    entry = stack.location_entry()
    assert entry["loadStatus"] == "LOADED"
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    keys = {
        "/".join(n["assetKey"]["path"]) for r in location["repositories"] for n in r["assetNodes"]
    }
    assert keys >= set(ASSETS), f"missing: {set(ASSETS) - keys}"


def test_materialize_all_succeeds_in_its_own_run_container(materialized: ObservedRun) -> None:
    assert materialized.run["status"] == "SUCCESS"
    assert materialized.containers_seen, "no container labelled with the run id was seen"
    container_id = materialized.run["tagmap"].get("docker/container_id", "")
    assert any(container_id.startswith(c) for c in materialized.containers_seen)
    assert materialized.containers_after == [], "the run container was not removed"
    print(f"materialize all: {materialized.seconds:.1f}s")


def test_warehouse_holds_the_marts(
    stack: Stack, materialized: ObservedRun, sample_mart_rows: dict[str, int]
) -> None:
    assert materialized.run["status"] == "SUCCESS"
    stack.wait_idle()
    counts = stack.warehouse_counts(["customers", "orders"])
    assert counts == sample_mart_rows


def test_chart_link_in_metadata_serves_the_chart(stack: Stack, materialized: ObservedRun) -> None:
    # The chart's one materialization by this run (other tests' runs materialize it again later).
    run = stack.graphql(RUN_MATERIALIZATIONS, {"runId": materialized.run_id})["runOrError"]
    assert run["__typename"] == "Run", run
    (chart,) = [
        m for m in run["assetMaterializations"] if m["assetKey"]["path"] == ["order_count_chart"]
    ]
    urls = [e["url"] for e in chart["metadataEntries"] if e["label"] == "chart"]
    assert urls == [f"{stack.env['REPORTS_BASE_URL']}/order_count_chart.html"]
    with urllib.request.urlopen(urls[0], timeout=30) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "text/html"
        body = response.read().decode()
    assert "Orders per customer" in body and "plotly" in body.lower()
