"""Freshness policies: the marts and the chart must be as fresh as the schedule promises."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config_schema

from jaffle_platform.definitions import defs
from jaffle_platform.defs.alerts.freshness import (
    longest_gap,
    refresh_window,
    with_freshness_policies,
)

ROOT = Path(__file__).resolve().parents[2]
HOURS = dt.timedelta(hours=1)


def policies(definitions: dg.Definitions) -> dict[str, dt.timedelta | None]:
    graph = definitions.resolve_asset_graph()
    found = {}
    for key in graph.get_all_asset_keys():
        policy = graph.get(key).freshness_policy
        found[key.to_user_string()] = (
            policy.fail_window.to_timedelta()  # type: ignore[union-attr]
            if policy is not None
            else None
        )
    return found


def test_marts_and_chart_must_be_refreshed_within_26_hours():
    found = policies(defs)
    assert {name: window for name, window in found.items() if window} == {
        "customers": 26 * HOURS,
        "orders": 26 * HOURS,
        "order_count_chart": 26 * HOURS,
    }
    assert found["raw_orders"] is None and found["stg_orders"] is None


def test_the_window_follows_the_schedule(monkeypatch):
    monkeypatch.setenv("JAFFLE_SCHEDULE_CRON", "0 6 * * 1-5")
    assert refresh_window() == 74 * HOURS, "weekdays only: the weekend is the longest gap"
    monkeypatch.setenv("JAFFLE_SCHEDULE_CRON", "15 * * * *")
    assert refresh_window() == 3 * HOURS
    # The night clocks go back (25 October 2026 in Berlin), 06:00 comes 25 h after the last.
    october = dt.datetime(2026, 10, 20, tzinfo=dt.UTC).timestamp()
    assert longest_gap("0 6 * * *", "Europe/Berlin", start=october) == 25 * HOURS


def test_policies_apply_to_assets_wherever_they_are_defined():
    @dg.asset(name="orders")
    def other_orders() -> None: ...

    @dg.asset(name="payments_report")
    def payments_report() -> None: ...

    elsewhere = dg.Definitions(assets=[other_orders, payments_report])
    found = policies(with_freshness_policies(elsewhere))
    assert found == {"orders": 26 * HOURS, "payments_report": None}


def test_dagster_yaml_turns_freshness_evaluation_on(monkeypatch):
    for name in ("HOST", "USER", "PASSWORD", "DB"):
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{name}", "x")
    config = yaml.safe_load((ROOT / "dagster_home" / "dagster.yaml").read_text())
    assert config["freshness"] == {"enabled": True}
    result = process_config(dagster_instance_config_schema(), config)
    assert result.success, result.errors
