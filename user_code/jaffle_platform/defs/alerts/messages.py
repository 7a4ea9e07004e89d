"""The text of each alert, written for whoever is on call: what broke, the first error, a link."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote

import dagster as dg
from dagster_shared.error import SerializableErrorInfo

from jaffle_platform import settings
from jaffle_platform.defs.alerts.delivery import Alert

MAX_ERROR_CHARS = 600
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_ASSETS_SHOWN = 6
# Dagster wraps the user's exception in these; the alert shows the user's own.
WRAPPER_ERRORS = {
    "DagsterExecutionStepExecutionError",
    "DagsterUserCodeExecutionError",
    "DagsterExecutionInterruptedError",
}


def run_link(run_id: str) -> str:
    return f"{settings.public_url()}/runs/{run_id}"


def asset_link(key: dg.AssetKey, view: str | None = None) -> str:
    path = "/".join(quote(part, safe="") for part in key.path)
    return f"{settings.public_url()}/assets/{path}" + (f"?view={view}" if view else "")


def daemons_link() -> str:
    return f"{settings.public_url()}/deployment/daemons"


def _shorten(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Plain text a chat or mail shows well: no terminal colours, no blank lines, bounded."""
    text = ANSI_ESCAPE.sub("", text)
    text = "\n".join(line for line in text.splitlines() if line.strip()).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def error_text(error: SerializableErrorInfo | None) -> str | None:
    """The user's exception as `Class: message`, unwrapped from Dagster's wrappers."""
    while error is not None and error.cls_name in WRAPPER_ERRORS and error.cause is not None:
        error = error.cause
    if error is None:
        return None
    message = error.message.strip()
    # SerializableErrorInfo.message already reads "Class: text" for most exceptions.
    if error.cls_name and not message.startswith(error.cls_name):
        message = f"{error.cls_name}: {message}"
    return message


def step_failure_text(event: dg.DagsterEvent) -> str | None:
    """What a STEP_FAILURE says: a Failure's description first, else the exception."""
    data = event.step_failure_data
    described = data.user_failure_data.description if data.user_failure_data else None
    text = described or error_text(data.error)
    if not text:
        return None
    step = event.step_key or ""
    return text if not step or text.startswith(f"{step}:") else f"{step}: {text}"


def first_error(failure: dg.DagsterEvent, step_failures: Sequence[dg.DagsterEvent]) -> str:
    """The first error of a failed run: its first failed step's, else the run's own reason."""
    data = failure.job_failure_data if failure.is_run_failure else None
    candidates: list[dg.DagsterEvent] = []
    if data is not None and data.first_step_failure_event is not None:
        candidates.append(data.first_step_failure_event)
    candidates.extend(step_failures)
    for event in candidates:
        text = step_failure_text(event)
        if text:
            return _shorten(text)
    if data is not None:
        text = error_text(data.error)
        if text:
            return _shorten(text)
    return _shorten(failure.message or "no error recorded")


def _asset_names(keys: Iterable[dg.AssetKey]) -> str:
    names = sorted(k.to_user_string() for k in keys)
    shown = ", ".join(names[:MAX_ASSETS_SHOWN])
    more = len(names) - MAX_ASSETS_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _run_scope(run: dg.DagsterRun) -> list[str]:
    return [f"Assets: {_asset_names(run.asset_selection)}"] if run.asset_selection else []


def run_failed(run: dg.DagsterRun, error: str) -> Alert:
    return Alert(
        title=f"Run failed: {run.job_name} ({run.run_id[:8]})",
        body="\n".join(
            [
                f"Run {run.run_id} of job {run.job_name} failed.",
                *_run_scope(run),
                f"First error: {error}",
                run_link(run.run_id),
            ]
        ),
        kind="failure",
    )


def run_recovered(run: dg.DagsterRun, failed: dg.DagsterRun) -> Alert:
    return Alert(
        title=f"Recovered: {run.job_name} ({run.run_id[:8]})",
        body="\n".join(
            [
                f"Run {run.run_id} of job {run.job_name} succeeded after failed run "
                f"{failed.run_id}.",
                *_run_scope(run),
                run_link(run.run_id),
            ]
        ),
        kind="success",
    )


def _check_details(metadata: Mapping[str, dg.MetadataValue]) -> list[str]:
    details = []
    for name, value in sorted(metadata.items()):
        if name.endswith("failed_row_count") or name == "dagster_dbt/failed_row_count":
            details.append(f"Failing rows: {value.value}")
    return details


def check_failed(run: dg.DagsterRun, evaluation: dg.AssetCheckEvaluation) -> Alert:
    asset = evaluation.asset_key.to_user_string()
    return Alert(
        title=f"Check failed: {asset} {evaluation.check_name}",
        body="\n".join(
            [
                f"Blocking check {evaluation.check_name} on {asset} failed in run {run.run_id} "
                f"of job {run.job_name}.",
                *([_shorten(evaluation.description)] if evaluation.description else []),
                *_check_details(evaluation.metadata),
                asset_link(evaluation.asset_key, view="checks"),
                run_link(run.run_id),
            ]
        ),
        kind="failure",
    )


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def asset_stale(
    key: dg.AssetKey, window: dt.timedelta | None, last: float | None, now: float
) -> Alert:
    asset = key.to_user_string()
    expected = (
        "Its freshness policy expects a materialization at least every "
        f"{_duration(window.total_seconds())}."
        if window
        else "It fails its freshness policy."
    )
    seen = (
        f"Last materialized {_when(last)}, {_duration(now - last)} ago."
        if last is not None
        else "It has never been materialized."
    )
    return Alert(
        title=f"Stale: {asset}",
        body="\n".join([f"{asset} is not fresh. {expected}", seen, asset_link(key)]),
        kind="failure",
    )


def asset_fresh_again(key: dg.AssetKey) -> Alert:
    asset = key.to_user_string()
    return Alert(
        title=f"Fresh again: {asset}",
        body=f"{asset} was materialized and meets its freshness policy again.\n{asset_link(key)}",
        kind="success",
    )


def daemons_stale(stale: Mapping[str, float | None], tolerance_s: float, now: float) -> Alert:
    lines = [
        f"- {name}: "
        + (f"last heartbeat {_when(last)}, {_duration(now - last)} ago" if last else "no heartbeat")
        for name, last in sorted(stale.items())
    ]
    return Alert(
        title=f"Dagster daemon not heartbeating: {', '.join(sorted(stale))}",
        body="\n".join(
            [
                f"No heartbeat for over {int(tolerance_s)} s from:",
                *lines,
                "Schedules, sensors, the run queue or run monitoring stop while their daemon is "
                "down (`docker compose logs daemon`).",
                daemons_link(),
            ]
        ),
        kind="failure",
    )


def daemons_back(names: Iterable[str]) -> Alert:
    names = sorted(names)
    return Alert(
        title=f"Dagster daemon heartbeating again: {', '.join(names)}",
        body=f"{', '.join(names)} sent a heartbeat again.\n{daemons_link()}",
        kind="success",
    )
