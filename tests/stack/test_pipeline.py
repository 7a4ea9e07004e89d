"""'Materialize all' through the GraphQL API: one run container, the marts, the chart."""

from __future__ import annotations

import time
import urllib.request

import pytest

from jaffle_stack.graphql import RANGE_END_TAG, RANGE_START_TAG
from jaffle_stack.stack import ObservedRun, Stack
from jaffle_stack.wait import poll
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
    # The chart's materializations by this run, one a day of its range (other tests' runs
    # materialize it again later).
    run = stack.graphql(RUN_MATERIALIZATIONS, {"runId": materialized.run_id})["runOrError"]
    assert run["__typename"] == "Run", run
    charts = [
        m for m in run["assetMaterializations"] if m["assetKey"]["path"] == ["order_count_chart"]
    ]
    assert charts
    urls = {e["url"] for m in charts for e in m["metadataEntries"] if e["label"] == "chart"}
    assert urls == {f"{stack.env['REPORTS_BASE_URL']}/order_count_chart.html"}
    (url,) = urls
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "text/html"
        body = response.read().decode()
    assert "Orders per customer" in body and "plotly" in body.lower()


def test_a_backfill_of_a_range_of_days_runs_as_one_run(
    stack: Stack, materialized: ObservedRun, sample_mart_rows: dict[str, int]
) -> None:
    """Issue 10: "Materialize all" over ten days from the UI is a partition backfill; every asset
    has a single-run backfill policy, so the backfill is one run over the range."""
    stack.wait_idle()
    days = [f"2018-01-{d:02d}" for d in range(1, 11)]
    backfill_id = stack.launch_backfill(days)
    tagged = {"dagster/backfill": backfill_id}
    (first,) = poll("the backfill's run", lambda: stack.runs(tags=tagged) or None, 180)
    run = stack.wait_run(first["runId"], 300)
    assert run["status"] == "SUCCESS", run
    assert run["tagmap"][RANGE_START_TAG] == days[0]
    assert run["tagmap"][RANGE_END_TAG] == days[-1]
    time.sleep(10)  # the backfill daemon's next pass: a second run would show now
    assert [r["runId"] for r in stack.runs(tags=tagged)] == [run["runId"]]
    # A replay of days already loaded changes nothing.
    assert stack.warehouse_counts(["customers", "orders"]) == sample_mart_rows
