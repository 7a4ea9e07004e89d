"""Freshness: the marts and the chart must be refreshed as often as the schedule promises.

Dagster's freshness daemon (dagster.yaml `freshness: enabled: true`) evaluates the policies every
30 s and records a FRESHNESS_STATE_CHANGE event when an asset turns stale (FAIL) or fresh (PASS);
the freshness sensor turns those events into alerts.
"""

from __future__ import annotations

import datetime as dt
import warnings
from itertools import islice, pairwise

import dagster as dg
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from dagster._core.events import DagsterEventType
from dagster._time import get_current_timestamp
from dagster._utils.schedules import cron_string_iterator

from jaffle_platform import settings
from jaffle_platform.defs.alerts import messages
from jaffle_platform.defs.alerts.delivery import Alert

# What users look at: the two marts and the chart drawn from them.
WATCHED_ASSETS = ("customers", "orders", "order_count_chart")
# Time a refresh may take after its tick (a run queued behind another, a slow download) before
# its outputs count as late.
REFRESH_SLACK = dt.timedelta(hours=2)
# Enough ticks to see a weekly pattern's longest gap.
CRON_TICKS_SAMPLED = 60


def longest_gap(cron: str, timezone: str, start: float | None = None) -> dt.timedelta:
    """The longest time between two ticks of the schedule (a weekday schedule: the weekend)."""
    start = get_current_timestamp() if start is None else start
    ticks = islice(cron_string_iterator(start, cron, timezone), CRON_TICKS_SAMPLED + 1)
    # Timestamps, not wall-clock datetimes: across a daylight-saving change a daily tick is 23 or
    # 25 h from the previous one, and subtracting zoned datetimes would say 24.
    gaps = (b.timestamp() - a.timestamp() for a, b in pairwise(ticks))
    return dt.timedelta(seconds=max(gaps, default=dt.timedelta(days=1).total_seconds()))


def refresh_window() -> dt.timedelta:
    """How old the watched assets may get: the schedule's longest gap plus REFRESH_SLACK, i.e.
    26 h for the default daily schedule (JAFFLE_SCHEDULE_CRON, JAFFLE_SCHEDULE_TIMEZONE)."""
    return longest_gap(settings.schedule_cron(), settings.schedule_timezone()) + REFRESH_SLACK


def with_freshness_policies(defs: dg.Definitions) -> dg.Definitions:
    """defs with a time-window freshness policy on WATCHED_ASSETS, wherever they are defined."""
    policy = dg.FreshnessPolicy.time_window(fail_window=refresh_window())
    watched = {dg.AssetKey(name) for name in WATCHED_ASSETS}

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        return dg.apply_freshness_policy(spec, policy) if spec.key in watched else spec

    # Dagster's documented way to set freshness on assets defined elsewhere (the dbt models);
    # marked preview, so its warning would be printed by every process that loads the code.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return defs.map_asset_specs(func=apply)


def latest_event_id(instance: dg.DagsterInstance) -> int:
    records = instance.event_log_storage.get_event_records(
        dg.EventRecordsFilter(event_type=DagsterEventType.FRESHNESS_STATE_CHANGE), limit=1
    )
    return records[0].storage_id if records else -1


def changes_after(instance: dg.DagsterInstance, after: int, limit: int) -> list[dg.EventLogRecord]:
    return list(
        instance.event_log_storage.get_event_records(
            dg.EventRecordsFilter(
                event_type=DagsterEventType.FRESHNESS_STATE_CHANGE, after_cursor=after
            ),
            limit=limit,
            ascending=True,
        )
    )


def _fail_window(asset_graph, key: dg.AssetKey) -> dt.timedelta | None:
    if asset_graph is None or not asset_graph.has(key):
        return None
    policy = asset_graph.get(key).freshness_policy
    window = getattr(policy, "fail_window", None)
    return window.to_timedelta() if window is not None else None


def alert_for(
    instance: dg.DagsterInstance, record: dg.EventLogRecord, asset_graph=None
) -> Alert | None:
    """A stale message when an asset turns FAIL; a fresh-again one when it leaves FAIL."""
    event = record.event_log_entry.dagster_event
    if event is None:
        return None
    change = event.event_specific_data
    if not isinstance(change, FreshnessStateChange):
        return None
    if change.new_state == FreshnessState.FAIL:
        latest = instance.get_latest_materialization_event(change.key)
        return messages.asset_stale(
            change.key,
            _fail_window(asset_graph, change.key),
            latest.timestamp if latest else None,
            change.state_change_timestamp,
        )
    if change.previous_state == FreshnessState.FAIL and change.new_state in (
        FreshnessState.PASS,
        FreshnessState.WARN,
    ):
        return messages.asset_fresh_again(change.key)
    return None
