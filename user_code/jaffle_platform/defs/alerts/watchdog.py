"""Alerts when the Dagster daemon itself stops: a small process beside it, not inside it.

Sensors are evaluated at the daemon's request, so a daemon that died (OOM, crash loop, a stopped
container) cannot say so through a sensor. This process reads the heartbeats from the instance's
storage and sends one alert when the daemon's sensor thread has not heartbeat for
daemons.TOLERANCE_S, listing every thread that stopped, and one when it is back:

    python -m jaffle_platform.defs.alerts.watchdog        # every 30 s, until stopped
    python -m jaffle_platform.defs.alerts.watchdog --once # one look (from cron, say), then exit

What it announced is kept in the instance's key-value store, so a restarted watchdog does not
announce the same outage twice.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
from dagster._time import get_current_timestamp

from jaffle_platform.defs.alerts import daemons, messages
from jaffle_platform.defs.alerts.delivery import Alert, Sender, Targets, load_targets

STATE_KEY = "jaffle/alerts/daemon_watchdog"
INTERVAL_S = 30.0

log = logging.getLogger("jaffle.alerts.watchdog")


def check(
    instance: dg.DagsterInstance,
    targets: Targets,
    started: float,
    now: float | None = None,
) -> list[Alert]:
    """One look: the alerts sent (or tried), with the state saved for the next look."""
    now = get_current_timestamp() if now is None else now
    storage = instance.run_storage
    previous = daemons.DaemonWatch.from_json(storage.get_cursor_values({STATE_KEY}).get(STATE_KEY))
    beats = daemons.heartbeats(instance)
    seen = daemons.look([daemons.SENSOR_DAEMON], beats, now, previous, watching_since=started)
    alerts: list[Alert] = []
    if seen.newly_stale:
        # Everything stopped, not only the sensor thread: that is what the reader needs to know.
        everything = daemons.look(
            daemons.required_daemons(instance),
            beats,
            now,
            daemons.DaemonWatch(),
            watching_since=started,
        )
        alerts.append(messages.daemons_stale(everything.stale, daemons.TOLERANCE_S, now))
    if seen.back:
        alerts.append(messages.daemons_back(seen.back))
    # Saved before sending: at most one message per change, as for the sensors.
    storage.set_cursor_values({STATE_KEY: seen.watch.to_json()})
    sender = Sender(targets)
    for alert in alerts:
        delivery = sender.send(alert)
        (log.info if delivery.ok else log.error)("%s: %s", alert.title, delivery.summary)
    return alerts


def run(
    instance: dg.DagsterInstance,
    once: bool = False,
    interval_s: float = INTERVAL_S,
    sleep: Callable[[float], None] = time.sleep,
    alive_file: Path | None = None,
) -> None:
    """Look every interval_s. A long-running watchdog gives the daemon TOLERANCE_S from its own
    start (they start together on `docker compose up`); a single look does not."""
    started = 0.0 if once else get_current_timestamp()
    said = ""
    while True:
        # Read at every look: `docker compose up` rewrites the URLs without restarting this.
        targets = load_targets()
        news = "\n".join(targets.problems) + ("off" if targets.off else "on")
        if news != said:
            said = news
            for problem in targets.problems:
                log.error(problem)
            if targets.off:
                log.warning("JAFFLE_ALERT_URLS is empty: watching, but no alert will be sent")
        try:
            check(instance, targets, started)
        except Exception:  # a database restart, say: try again at the next look
            log.exception("could not read the daemon heartbeats")
        else:
            if alive_file is not None:
                alive_file.touch()  # for the container's healthcheck
        if once:
            return
        sleep(interval_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--once", action="store_true", help="look once and exit")
    parser.add_argument("--interval", type=float, default=INTERVAL_S, help="seconds between looks")
    parser.add_argument(
        "--alive-file", type=Path, help="touched after every look that could read the heartbeats"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with dg.DagsterInstance.get() as instance:
        run(instance, once=args.once, interval_s=args.interval, alive_file=args.alive_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
