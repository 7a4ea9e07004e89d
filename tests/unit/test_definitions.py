"""The code location loads, with the tutorial's graph and the automation in place."""

from __future__ import annotations

import subprocess

import dagster as dg

from jaffle_platform.definitions import defs
from jaffle_platform.partitions import daily_partitions
from tests import ASSETS


def asset_graph():
    return defs.resolve_asset_graph()


def test_definitions_load_with_every_asset():
    keys = {k.to_user_string() for k in asset_graph().get_all_asset_keys()}
    assert set(ASSETS) <= keys


def test_graph_runs_from_raw_files_to_chart():
    graph = asset_graph()

    def parents(name: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(name)).parent_keys}

    assert parents("stg_customers") == {"raw_customers"}
    assert parents("stg_orders") == {"raw_orders"}
    assert parents("stg_payments") == {"raw_payments"}
    # customers also reads the staging views, to find the customers a run's days touched.
    assert parents("customers") == {"stg_customers", "orders", "stg_orders", "stg_payments"}
    assert parents("orders") == {"stg_orders", "stg_payments"}
    assert parents("order_count_chart") == {"customers"}


def test_dbt_models_chart_and_snapshot_are_daily_partitioned_and_backfill_in_one_run():
    graph = asset_graph()
    names = ("stg_customers", "stg_orders", "stg_payments", "orders", "customers")
    for name in (*names, "order_count_chart", "warehouse_snapshot"):
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def == daily_partitions(), name
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), name


def test_weekly_full_tests_run_the_dbt_checks_alone():
    schedule = defs.resolve_schedule_def("weekly_dbt_full_tests")
    assert schedule.cron_schedule == "0 7 * * 0"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    job = defs.resolve_job_def("dbt_full_tests")
    assert job.asset_layer.selected_asset_keys == set()
    checks = job.asset_layer.asset_graph.asset_check_keys
    assert {c.name for c in checks} >= {"unique_stg_payments_payment_id", "unique_orders_order_id"}


def test_dbt_tests_are_asset_checks():
    checks = {k.name for k in asset_graph().asset_check_keys}
    assert any(name.startswith("unique_") for name in checks)
    assert any(name.startswith("relationships_") for name in checks)


def test_every_warehouse_asset_shares_the_duckdb_pool():
    job = defs.resolve_implicit_global_asset_job_def()
    nodes = job.graph.node_dict.values()
    pools = {n.name: getattr(n.definition, "pool", None) for n in nodes}
    assert pools and set(pools.values()) == {"duckdb"}, pools


def test_dbt_version_known_without_running_dbt_matches_the_executable():
    from jaffle_platform.defs.dbt.resources import dbt_cli as dbt

    assert isinstance((defs.resources or {})["dbt"], dg.ResourceDefinition)
    out = subprocess.run(
        [dbt.dbt_executable, "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"installed: {dbt._cli_version}" in out
