"""Which Dagster daemon threads stopped heartbeating, and which came back, between two looks.

Each thread of `dagster-daemon` (scheduler, sensors, run queue, run monitoring, retries,
freshness, ...) writes a heartbeat every 30 s. The daemon sensor watches all of them but the
sensor thread itself, which is what evaluates it; the watchdog process watches the sensor thread,
i.e. a daemon that is down altogether (docs/operations.md, Alerts).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dagster as dg

# Five missed heartbeats: a thread busy with one slow iteration (a sensor near its 60 s limit)
# is not reported, a stopped one is within 3 minutes.
TOLERANCE_S = 180.0
SENSOR_DAEMON = "SENSOR"


@dataclass
class DaemonWatch:
    """What was reported: threads announced as not heartbeating, and since when a thread that
    never heartbeat has been missing (a fresh daemon gets TOLERANCE_S to write its first)."""

    alerted: set[str] = field(default_factory=set)
    missing_since: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"alerted": sorted(self.alerted), "missing_since": self.missing_since},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> DaemonWatch:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            alerted=set(data.get("alerted", [])),
            missing_since={k: float(v) for k, v in data.get("missing_since", {}).items()},
        )


@dataclass
class Look:
    watch: DaemonWatch  # the state to keep
    stale: dict[str, float | None]  # every watched thread now stale -> its last heartbeat
    newly_stale: dict[str, float | None]  # of those, the ones not announced yet
    back: list[str]  # announced before, heartbeating again


def look(
    watched: Iterable[str],
    heartbeats: Mapping[str, float],
    now: float,
    previous: DaemonWatch,
    tolerance_s: float = TOLERANCE_S,
    watching_since: float | None = None,
) -> Look:
    """Compare the latest heartbeat of each watched thread with now.

    watching_since: heartbeats older than this count as written then (the watchdog passes its own
    start time, so a daemon restarted along with it is not reported for its old heartbeat).
    """
    watched = sorted(set(watched))
    missing_since: dict[str, float] = {}
    stale: dict[str, float | None] = {}
    for name in watched:
        last = heartbeats.get(name)
        if last is None:
            since = previous.missing_since.get(name, now)
            missing_since[name] = since
            if now - max(since, watching_since or since) > tolerance_s:
                stale[name] = None
        elif now - max(last, watching_since or last) > tolerance_s:
            stale[name] = last
    newly = {name: last for name, last in stale.items() if name not in previous.alerted}
    back = sorted(name for name in previous.alerted if name in watched and name not in stale)
    return Look(
        watch=DaemonWatch(alerted=set(stale), missing_since=missing_since),
        stale=stale,
        newly_stale=newly,
        back=back,
    )


def heartbeats(instance: dg.DagsterInstance) -> dict[str, float]:
    return {name: beat.timestamp for name, beat in instance.get_daemon_heartbeats().items()}


def required_daemons(instance: dg.DagsterInstance) -> list[str]:
    """The threads this instance's dagster.yaml makes the daemon run."""
    return list(instance.get_required_daemon_types())
