"""What a run asks of dbt: its window of load days and whether to rebuild everything.

A run covers the half-open window [start, end) of its partition key range (one day, or a range
run as one backfill); dbt gets it as the vars `min_day` / `max_day`. A run without partitions
(the weekly full tests) or tagged `jaffle/full_refresh=true` has no window: dbt then reconciles
every day, and its tests check every row.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

FULL_REFRESH_TAG = "jaffle/full_refresh"


@dataclass(frozen=True)
class LoadWindow:
    """Load days from `start` (included) to `end` (excluded)."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty window of load days: [{self.start}, {self.end})")


def full_refresh_requested(tags: Mapping[str, str]) -> bool:
    """True when the run carries `jaffle/full_refresh=true` (false and absent mean no)."""
    value = tags.get(FULL_REFRESH_TAG, "false").strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"run tag {FULL_REFRESH_TAG}={value!r}: use true or false")
    return value == "true"


def run_window(context: dg.AssetExecutionContext) -> LoadWindow | None:
    """The run's window of load days, or None when the run has no partitions."""
    # A range run (a backfill as one run) has a key range and no single key: test both.
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    window = context.partition_time_window
    return LoadWindow(window.start.date(), window.end.date())


def dbt_build_args(
    window: LoadWindow | None, full_refresh: bool, checks_only: bool = False
) -> list[str]:
    """One dbt command for the whole run: dbt's start-up is paid once, whatever the range.

    `dbt build`, except for a run of checks alone (the weekly full tests): `dbt test`, which
    runs every selected test even when one fails (build would skip the tests downstream of it).
    A run with a window leaves dbt's unit tests out: they test the models' code, not the day's
    data, and cost about a second of every daily run; full runs and CI (`dbt build`) run them.
    """
    command = "test" if checks_only else "build"
    if full_refresh:
        # Everything rebuilt from all days, and every test on every row: no window at all.
        return [command, "--full-refresh"] if command == "build" else [command]
    if window is None:
        return [command]
    days = {"min_day": window.start.isoformat(), "max_day": window.end.isoformat()}
    return [command, "--vars", json.dumps(days), "--exclude", "resource_type:unit_test"]
