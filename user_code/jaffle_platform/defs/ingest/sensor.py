"""Landing sensor: the daily files dropped into LANDING_DIR are loaded day by day, once complete.

The folder has the layout of RAW_DATA_URI: `raw_customers.csv`, `raw_orders/YYYY-MM-DD.csv`,
`raw_payments/YYYY-MM-DD.csv`. A day is complete when both its files are there and each has
stayed unchanged (size and mtime) for JAFFLE_LANDING_STABLE_SECONDS; the sensor then requests a
run of that day's partition, the run checks it loads exactly those versions. A changed file of a
day requests the day again. A changed raw_customers.csv rides along with the earliest day ready in
the same tick, or else requests a run of the latest complete landed day.

Safe protocol for whoever drops files: write `2018-01-01.csv.part` (or `.tmp`, or a dot-file),
then rename it. Only names of the layout are ever read, so a half-written temporary file is
never seen; a file written in place waits out the stability window.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from jaffle_platform import settings
from jaffle_platform.defs.ingest.loader import RAW_TABLES
from jaffle_platform.defs.refresh.schedules import max_runtime_tags
from jaffle_platform.partitions import daily_partitions

MINIMUM_INTERVAL_S = 10
TRIGGER_TAG = "trigger"
FILE_TAG_PREFIX = "jaffle/landing_"
DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.csv$")
SNAPSHOT_TABLES = tuple(t.name for t in RAW_TABLES.values() if not t.daily)
DAILY_TABLES = tuple(t.name for t in RAW_TABLES.values() if t.daily)


@dataclass(frozen=True)
class Signature:
    size: int
    mtime_ns: int

    def describe(self) -> str:
        return f"size={self.size} mtime_ns={self.mtime_ns}"


@dataclass
class LandingState:
    """The sensor cursor, by file (`raw_customers.csv`, `raw_orders/2018-01-01.csv`): the
    version last requested, and files waiting to settle (signature, first seen at)."""

    requested: dict[str, Signature] = field(default_factory=dict)
    settling: dict[str, tuple[Signature, float]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "requested": {f: [s.size, s.mtime_ns] for f, s in self.requested.items()},
                "settling": {
                    f: [s.size, s.mtime_ns, since] for f, (s, since) in self.settling.items()
                },
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, cursor: str | None) -> LandingState:
        if not cursor:
            return cls()
        data = json.loads(cursor)
        if not isinstance(data, dict) or "requested" not in data:
            # A cursor from the old RAW_DATA_URI sensor: start over, loading what is there.
            return cls()
        # Keys of the flat layout (`raw_orders`) match no file any more and are dropped.
        return cls(
            requested={
                f: Signature(size, mt)
                for f, (size, mt) in data["requested"].items()
                if f.endswith(".csv")
            },
            settling={
                f: (Signature(size, mt), float(since))
                for f, (size, mt, since) in data.get("settling", {}).items()
                if f.endswith(".csv")
            },
        )


def _regular(path: Path) -> Signature | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return Signature(st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


def landed_files(
    directory: Path, first_day: dt.date | None = None, last_day: dt.date | None = None
) -> dict[str, Signature]:
    """Signature of each file of the layout present, by its path relative to the folder.

    Anything else (`*.part`, `*.tmp`, dot-files, other names, days outside [first_day,
    last_day]) is never looked at; symlinks and other non-regular files, day folders included,
    are skipped so the folder cannot point a run elsewhere.
    """
    found: dict[str, Signature] = {}
    for name in SNAPSHOT_TABLES:
        sig = _regular(directory / f"{name}.csv")
        if sig is not None:
            found[f"{name}.csv"] = sig
    for name in DAILY_TABLES:
        folder = directory / name
        try:
            if not stat.S_ISDIR(os.stat(folder, follow_symlinks=False).st_mode):
                continue
            entries = os.listdir(folder)
        except FileNotFoundError:
            continue
        for entry in entries:
            match = DAY_FILE.match(entry)
            if match is None:
                continue
            try:
                day = dt.date.fromisoformat(match.group(1))
            except ValueError:
                continue
            if (first_day and day < first_day) or (last_day and day > last_day):
                continue
            sig = _regular(folder / entry)
            if sig is not None:
                found[f"{name}/{entry}"] = sig
    return found


def settle(
    state: LandingState, present: dict[str, Signature], now: float, stable_seconds: float
) -> tuple[dict[str, Signature], dict[str, tuple[Signature, float]]]:
    """(files present, new or changed since last requested, and unchanged for stable_seconds;
    every new or changed file with the time it was first seen in this version)."""
    settling: dict[str, tuple[Signature, float]] = {}
    stable: dict[str, Signature] = {}
    for name, sig in sorted(present.items()):
        if state.requested.get(name) == sig:
            continue
        previous = state.settling.get(name)
        since = previous[1] if previous is not None and previous[0] == sig else now
        settling[name] = (sig, since)
        if now - since >= stable_seconds:
            stable[name] = sig
    return stable, settling


@dataclass(frozen=True)
class DayRun:
    """One run to request: a day, the files it loads (by table), and why."""

    day: str
    files: dict[str, tuple[str, Signature]]


@dataclass
class Plan:
    runs: list[DayRun]
    state: LandingState
    waiting: list[str]


def plan(
    state: LandingState, present: dict[str, Signature], now: float, stable_seconds: float
) -> Plan:
    """Which days to run now, and the next cursor.

    A day runs when its raw_orders and raw_payments files are both present and stable, and one
    of them is new or changed; raw_customers.csv, while it settles, holds every day back (a new
    day may name new customers); it is then loaded with the earliest day ready, or, when no day
    is, in a run of the latest complete landed day. Files of a day that is not complete keep
    settling.
    """
    stable, settling = settle(state, present, now, stable_seconds)
    days = sorted({name.split("/")[1][:-4] for name in present if "/" in name})
    waiting = [name for name in settling if name not in stable]
    snapshots = {f"{t}.csv": t for t in SNAPSHOT_TABLES if f"{t}.csv" in settling}
    runs: list[DayRun] = []
    if not any(name in waiting for name in snapshots):
        for day in days:
            names = {t: f"{t}/{day}.csv" for t in DAILY_TABLES}
            if not all(n in present for n in names.values()):
                continue
            changed = [n for n in names.values() if n in settling]
            if changed and all(n in stable for n in changed):
                runs.append(DayRun(day, {t: (n, present[n]) for t, n in names.items()}))
        ready_snapshots = {n: t for n, t in snapshots.items() if n in stable}
        if ready_snapshots:
            complete = [d for d in days if all(f"{t}/{d}.csv" in present for t in DAILY_TABLES)]
            if runs:
                # The earliest day: the days after it, queued behind its run, then see the new
                # customers (their orders may name them; dbt tests their relationships), and a
                # fresh warehouse gets stg_customers from its first run.
                target = runs[0]
            else:
                target = DayRun(complete[-1] if complete else _last_partition(), {})
                runs.append(target)
            target.files.update({t: (n, present[n]) for n, t in ready_snapshots.items()})
    requested = dict(state.requested)
    for run in runs:
        requested.update({name: sig for name, sig in run.files.values()})
    left = {n: s for n, s in settling.items() if n not in requested or requested[n] != s[0]}
    return Plan(runs, LandingState(requested=requested, settling=left), sorted(waiting))


def _last_partition() -> str:
    return daily_partitions().get_last_partition_key() or settings.partitions_start().isoformat()


def _now() -> float:
    return time.time()


def run_request_for(context: dg.SensorEvaluationContext, run: DayRun) -> dg.RunRequest:
    """One run of the day's partition: the landed raw assets (each told which file version to
    expect) and everything downstream."""
    selection = dg.AssetSelection.assets(*run.files).downstream()
    keys = selection.resolve(context.repository_def.asset_graph)  # type: ignore[union-attr]
    run_key = f"landing:{run.day}:" + ",".join(
        f"{name}:{sig.size}:{sig.mtime_ns}" for name, sig in sorted(run.files.values())
    )
    ops = {
        table: {
            "config": {
                "from_landing": True,
                "expected_size": sig.size,
                "expected_mtime_ns": sig.mtime_ns,
            }
        }
        for table, (_, sig) in run.files.items()
    }
    tags = {
        TRIGGER_TAG: "landing",
        **{f"{FILE_TAG_PREFIX}{t}": f"{n} {sig.describe()}" for t, (n, sig) in run.files.items()},
        **max_runtime_tags(),
    }
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=sorted(keys),
        run_config={"ops": ops},
        tags=tags,
        partition_key=run.day,
    )


@dg.sensor(
    name="raw_files_sensor",
    description=(
        "Watches LANDING_DIR for raw_customers.csv, raw_orders/YYYY-MM-DD.csv and "
        "raw_payments/YYYY-MM-DD.csv. Once both files of a day are there and have stayed "
        "unchanged for JAFFLE_LANDING_STABLE_SECONDS, it runs that day's partition with "
        "everything downstream; a changed file reruns its day. A changed raw_customers.csv is "
        "loaded with the earliest day ready. Write to a .part/.tmp name and rename when done; "
        "those names are ignored."
    ),
    minimum_interval_seconds=MINIMUM_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    target=dg.AssetSelection.all(),
)
def raw_files_sensor(context: dg.SensorEvaluationContext):
    directory = settings.landing_dir()
    if not directory.is_dir():
        return dg.SkipReason(f"landing folder {directory} (LANDING_DIR) does not exist")
    partitions = daily_partitions()
    last = partitions.get_last_partition_key()
    present = landed_files(
        directory,
        settings.partitions_start(),
        dt.date.fromisoformat(last) if last else None,
    )
    result = plan(
        LandingState.from_json(context.cursor),
        present,
        _now(),
        settings.landing_stable_seconds(),
    )
    context.update_cursor(result.state.to_json())
    if result.runs:
        return [run_request_for(context, run) for run in result.runs]
    if result.waiting:
        shown = ", ".join(result.waiting[:5]) + (" ..." if len(result.waiting) > 5 else "")
        return dg.SkipReason(
            f"waiting for {shown} to stay unchanged for "
            f"{settings.landing_stable_seconds():g} s (JAFFLE_LANDING_STABLE_SECONDS)"
        )
    incomplete = sorted(
        name for name in result.state.settling if name not in result.state.requested
    )
    if incomplete:
        return dg.SkipReason(
            f"waiting for the other file of the day of {', '.join(incomplete[:5])}: a day runs "
            "once both raw_orders/<day>.csv and raw_payments/<day>.csv are there"
        )
    return dg.SkipReason(f"no new or changed raw files in {directory}")
