"""Three sensors send the alerts: finished runs, freshness changes, daemon heartbeats.

Each reads Dagster's storage after its own cursor, so every event gives one message, once: a
message that cannot be delivered after its retries is reported (tick text, sensor log, the run's
event log) and not sent again, as Dagster's own run status sensors do, so that a webhook which
took the message but answered badly is not flooded. They always run, and read the alert URLs at
every tick: without any, a tick only moves the cursor on, so turning alerts on never replays.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import dagster as dg
from dagster._time import get_current_timestamp

from jaffle_platform.defs.alerts import daemons, freshness, messages, runs
from jaffle_platform.defs.alerts.delivery import Alert, Delivery, Sender, load_targets

MINIMUM_INTERVAL_S = 30
EVENTS_PER_TICK = 25
OFF = "alerts are off: JAFFLE_ALERT_URLS is empty"


def _after(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(json.loads(cursor)["after"])
    except (ValueError, KeyError, TypeError):
        return None


def _cursor(after: int) -> str:
    return json.dumps({"after": after})


class Tick:
    """One evaluation: sends alerts, logs each, and writes the tick's text."""

    def __init__(self, context: dg.SensorEvaluationContext):
        self.context = context
        self.targets = load_targets()
        self.sender = Sender(self.targets)
        self.lines: list[str] = []
        for problem in self.targets.problems:
            context.log.error(problem)

    @property
    def off(self) -> bool:
        return self.targets.off

    def send(self, alert: Alert) -> Delivery:
        delivery = self.sender.send(alert)
        line = f"{alert.title}: {delivery.summary}"
        (self.context.log.info if delivery.ok else self.context.log.error)(line)
        self.lines.append(line)
        return delivery

    def result(self, cursor: str, idle: str) -> dg.SensorResult:
        text = "; ".join([*self.targets.problems, *self.lines]) or idle
        return dg.SensorResult(skip_reason=text, cursor=cursor)


def _evaluate_events(
    context: dg.SensorEvaluationContext,
    latest: Callable[[dg.DagsterInstance], int],
    fetch: Callable[[dg.DagsterInstance, int, int], list[dg.EventLogRecord]],
    handle: Callable[[Tick, dg.EventLogRecord], None],
    what: str,
) -> dg.SensorResult:
    """The shared loop of the event sensors: start after the newest event, then one step per
    event in storage order, up to EVENTS_PER_TICK or the tick's time budget."""
    instance = context.instance
    after = _after(context.cursor)
    if after is None:
        start = latest(instance)
        return dg.SensorResult(
            skip_reason=f"started: {what} from now on are announced", cursor=_cursor(start)
        )
    tick = Tick(context)
    if tick.off:
        return dg.SensorResult(skip_reason=OFF, cursor=_cursor(latest(instance)))
    for record in fetch(instance, after, EVENTS_PER_TICK):
        if tick.sender.out_of_time():
            break
        handle(tick, record)
        after = record.storage_id
    return tick.result(_cursor(after), idle=f"no new {what}")


def _handle_run_event(tick: Tick, record: dg.EventLogRecord) -> None:
    instance = tick.context.instance
    run, alerts = runs.alerts_for(instance, record)
    for alert in alerts:
        delivery = tick.send(alert)
        if run is not None:
            # Shown in the run's own event log, so whoever opens the run sees who was told.
            instance.report_engine_event(
                f"Alert '{alert.title}': {delivery.summary}", dagster_run=run
            )


def run_alerts_fn(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    return _evaluate_events(
        context, runs.latest_event_id, runs.events_after, _handle_run_event, "run results"
    )


def _handle_freshness_event(tick: Tick, record: dg.EventLogRecord) -> None:
    repository = tick.context.repository_def
    alert = freshness.alert_for(
        tick.context.instance, record, repository.asset_graph if repository else None
    )
    if alert is not None:
        tick.send(alert)


def freshness_alerts_fn(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    return _evaluate_events(
        context,
        freshness.latest_event_id,
        freshness.changes_after,
        _handle_freshness_event,
        "freshness changes",
    )


def daemon_alerts_fn(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    instance = context.instance
    tick = Tick(context)
    if tick.off:
        return dg.SensorResult(skip_reason=OFF, cursor=daemons.DaemonWatch().to_json())
    # The sensor thread is the one evaluating this: the watchdog process watches it.
    watched = [d for d in daemons.required_daemons(instance) if d != daemons.SENSOR_DAEMON]
    now = get_current_timestamp()
    seen = daemons.look(
        watched, daemons.heartbeats(instance), now, daemons.DaemonWatch.from_json(context.cursor)
    )
    if seen.newly_stale:
        tick.send(messages.daemons_stale(seen.newly_stale, daemons.TOLERANCE_S, now))
    if seen.back:
        tick.send(messages.daemons_back(seen.back))
    idle = (
        f"still not heartbeating: {', '.join(sorted(seen.stale))}"
        if seen.stale
        else f"{len(watched)} daemon threads heartbeating"
    )
    return tick.result(seen.watch.to_json(), idle=idle)


def build_alert_sensors(status: dg.DefaultSensorStatus) -> Sequence[dg.SensorDefinition]:
    common = {"minimum_interval_seconds": MINIMUM_INTERVAL_S, "default_status": status}
    return [
        dg.SensorDefinition(
            name="run_alerts",
            evaluation_fn=run_alerts_fn,
            description=(
                "Sends one alert per failed run (job, first error, link), per failed blocking "
                "check, and one 'recovered' message when a run succeeds after its job's failure "
                "(a retry, a re-execution, the next run). To JAFFLE_ALERT_URLS."
            ),
            **common,
        ),
        dg.SensorDefinition(
            name="freshness_alerts",
            evaluation_fn=freshness_alerts_fn,
            description=(
                "Sends one alert when an asset fails its freshness policy, and one when it is "
                "fresh again. To JAFFLE_ALERT_URLS."
            ),
            **common,
        ),
        dg.SensorDefinition(
            name="daemon_alerts",
            evaluation_fn=daemon_alerts_fn,
            description=(
                "Sends one alert when a Dagster daemon thread (scheduler, run queue, run "
                f"monitoring, ...) has not heartbeat for {int(daemons.TOLERANCE_S)} s, and one "
                "when it is back. To JAFFLE_ALERT_URLS."
            ),
            **common,
        ),
    ]


@dg.definitions
def alerts() -> dg.Definitions:
    """The alert sensors, running by default: whether alerts are on is read at each tick (the
    URLs' file changes on `docker compose up` without the code server restarting)."""
    return dg.Definitions(sensors=build_alert_sensors(dg.DefaultSensorStatus.RUNNING))
