"""The days a run covers and how they are named in logs and metadata."""

from __future__ import annotations

import datetime as dt

import dagster as dg


def window_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The days of the run's partition window, [start, end): one for `--partition D`, each
    day of the range for a single-run backfill."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


def describe_days(days: list[dt.date], limit: int = 10) -> str:
    """Days as runs of consecutive days, `2018-01-05, 2018-01-07 to 2018-03-31 (84 days)`, at
    most `limit` runs shown, so thousands of days stay one short line."""
    if not days:
        return "none"
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days):
        if runs and day - runs[-1][1] == dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    parts = [str(a) if a == b else f"{a} to {b} ({(b - a).days + 1} days)" for a, b in runs[:limit]]
    if len(runs) > limit:
        parts.append(f"and {len(runs) - limit} more run(s) of days")
    return f"{len(days)} day(s): " + ", ".join(parts)
