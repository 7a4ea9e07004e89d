"""Landing sensor: raw CSVs dropped into LANDING_DIR are loaded once they have stopped changing.

Safe protocol for whoever drops files: write `raw_orders.csv.part` (or `.tmp`, or a dot-file),
then rename it to `raw_orders.csv`. Only the three fixed names are ever read, so a half-written
temporary file is never seen; a file written in place is loaded only after its size and mtime
have stayed the same for JAFFLE_LANDING_STABLE_SECONDS, and the run checks it is still that file.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from jaffle_platform import settings
from jaffle_platform.defs.ingest.loader import RAW_TABLES
from jaffle_platform.defs.refresh.schedules import max_runtime_tags

MINIMUM_INTERVAL_S = 10
TRIGGER_TAG = "trigger"
FILE_TAG_PREFIX = "jaffle/landing_"


@dataclass(frozen=True)
class Signature:
    size: int
    mtime_ns: int

    def describe(self) -> str:
        return f"size={self.size} mtime_ns={self.mtime_ns}"


@dataclass
class LandingState:
    """The sensor cursor: what was last requested per table, and files waiting to settle."""

    requested: dict[str, Signature] = field(default_factory=dict)
    # table -> (signature, when it was first seen with that signature)
    settling: dict[str, tuple[Signature, float]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "requested": {t: [s.size, s.mtime_ns] for t, s in self.requested.items()},
                "settling": {
                    t: [s.size, s.mtime_ns, since] for t, (s, since) in self.settling.items()
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
        return cls(
            requested={t: Signature(size, mt) for t, (size, mt) in data["requested"].items()},
            settling={
                t: (Signature(size, mt), float(since))
                for t, (size, mt, since) in data.get("settling", {}).items()
            },
        )


def landed_files(directory: Path) -> dict[str, Signature]:
    """Signature of each raw file present under its fixed name, by table name.

    Anything else in the folder (`*.part`, `*.tmp`, dot-files, other names) is never looked at;
    symlinks and other non-regular files are skipped so the folder cannot point a run elsewhere.
    """
    found: dict[str, Signature] = {}
    for table in RAW_TABLES.values():
        try:
            st = os.stat(directory / table.file_name, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            found[table.name] = Signature(st.st_size, st.st_mtime_ns)
    return found


def settle(
    state: LandingState, present: dict[str, Signature], now: float, stable_seconds: float
) -> tuple[LandingState, dict[str, Signature]]:
    """Next cursor state and the files to load now: present, not yet requested in this exact
    version, and seen unchanged for at least stable_seconds."""
    settling: dict[str, tuple[Signature, float]] = {}
    ready: dict[str, Signature] = {}
    for table, sig in sorted(present.items()):
        if state.requested.get(table) == sig:
            continue
        previous = state.settling.get(table)
        if previous is None or previous[0] != sig:
            settling[table] = (sig, now)
        elif now - previous[1] >= stable_seconds:
            ready[table] = sig
        else:
            settling[table] = previous
    return LandingState(requested={**state.requested, **ready}, settling=settling), ready


def _now() -> float:
    return time.time()


def run_request_for(
    context: dg.SensorEvaluationContext, ready: dict[str, Signature]
) -> dg.RunRequest:
    """One run: the ready raw assets (told which file version to expect) and all downstream."""
    selection = dg.AssetSelection.assets(*ready).downstream()
    keys = selection.resolve(context.repository_def.asset_graph)  # type: ignore[union-attr]
    run_key = "landing:" + ",".join(
        f"{t}:{sig.size}:{sig.mtime_ns}" for t, sig in sorted(ready.items())
    )
    ops = {
        t: {
            "config": {
                "from_landing": True,
                "expected_size": sig.size,
                "expected_mtime_ns": sig.mtime_ns,
            }
        }
        for t, sig in ready.items()
    }
    tags = {
        TRIGGER_TAG: "landing",
        **{f"{FILE_TAG_PREFIX}{t}": sig.describe() for t, sig in ready.items()},
        **max_runtime_tags(),
    }
    return dg.RunRequest(
        run_key=run_key, asset_selection=sorted(keys), run_config={"ops": ops}, tags=tags
    )


@dg.sensor(
    name="raw_files_sensor",
    description=(
        "Watches LANDING_DIR for raw_customers.csv, raw_orders.csv and raw_payments.csv. A file "
        "not loaded yet (including one there before the sensor started) is loaded once it has "
        "stayed unchanged for JAFFLE_LANDING_STABLE_SECONDS, with everything downstream. Write "
        "to a .part/.tmp name and rename when done; those names are ignored."
    ),
    minimum_interval_seconds=MINIMUM_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    target=dg.AssetSelection.all(),
)
def raw_files_sensor(context: dg.SensorEvaluationContext):
    directory = settings.landing_dir()
    if not directory.is_dir():
        return dg.SkipReason(f"landing folder {directory} (LANDING_DIR) does not exist")
    state = LandingState.from_json(context.cursor)
    new_state, ready = settle(
        state, landed_files(directory), _now(), settings.landing_stable_seconds()
    )
    context.update_cursor(new_state.to_json())
    if ready:
        return run_request_for(context, ready)
    if new_state.settling:
        waiting = ", ".join(sorted(new_state.settling))
        return dg.SkipReason(
            f"waiting for {waiting} to stay unchanged for "
            f"{settings.landing_stable_seconds():g} s (JAFFLE_LANDING_STABLE_SECONDS)"
        )
    return dg.SkipReason(f"no new or changed raw files in {directory}")
