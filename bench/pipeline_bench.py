"""Wall time of the whole pipeline next to a plain `dbt build`, and in-process vs multiprocess.

At --orders N (default 10^6; as many customers) the generator writes the raw CSVs to a temp dir;
`dagster asset materialize --select '*'` then runs as a subprocess with RAW_DATA_URI, DUCKDB_PATH,
REPORTS_DIR and DAGSTER_HOME in that temp dir, and `dbt build` runs on the warehouse it left.
The same is done for the 100-customer sample data, once with the code location's in-process
executor and once with the multiprocess executor (bench/multiprocess_definitions.py). Step
durations come from the run's DAGSTER_HOME afterwards. Figures are printed, nothing is asserted.

    uv run --frozen python bench/pipeline_bench.py [--orders 1000000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from tables import table_text  # bench/ is on sys.path when a script here runs

from jaffle_platform import settings
from jaffle_platform.generate import generate

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SEED = 1
TARGET_SECONDS = 60.0
# Mirrors dagster_home/dagster.yaml: every warehouse step is in pool `duckdb`, one slot.
DAGSTER_YAML = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""


@dataclass
class Timed:
    what: str
    seconds: float
    dataset: str
    steps: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Workspace:
    root: Path
    raw_dir: Path

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RAW_DATA_URI": str(self.raw_dir),
            "DUCKDB_PATH": str(self.warehouse),
            "REPORTS_DIR": str(self.root / "reports"),
            "DAGSTER_HOME": str(self.dagster_home),
        }


def new_workspace(tmp: Path, name: str, raw_dir: Path) -> Workspace:
    ws = Workspace(tmp / name, raw_dir)
    ws.dagster_home.mkdir(parents=True)
    (ws.dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    return ws


def run(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}"
            f"\n{proc.stderr[-3000:]}"
        )
    return seconds


def step_durations(dagster_home: Path) -> list[tuple[str, float]]:
    """Each step's duration in the one run recorded under dagster_home, and the run's own."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.get_run_records(limit=1)
        if not records:
            return []
        record = records[0]
        steps = [
            (s.step_key, (s.end_time or 0.0) - (s.start_time or 0.0))
            for s in sorted(
                instance.get_run_step_stats(record.dagster_run.run_id),
                key=lambda s: s.start_time or 0.0,
            )
        ]
        if record.start_time and record.end_time:
            steps.append(("(run start to end)", record.end_time - record.start_time))
        return steps


def run_ids(dagster_home: Path) -> list[str]:
    if not (dagster_home / "history").exists():
        return []
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return [r.dagster_run.run_id for r in instance.get_run_records()]


def remove_dbt_targets(dbt_target: Path, ids: list[str]) -> None:
    """dagster-dbt leaves `<op>-<run id[:7]>-<uuid[:7]>` in the project's target dir per run:
    remove the ones our runs made, and nobody else's."""
    for run_id in ids:
        for path in dbt_target.glob(f"jaffle_shop_dbt_assets-{run_id[:7]}-*"):
            shutil.rmtree(path, ignore_errors=True)


def materialize(ws: Workspace, what: str, dataset: str, code: list[str]) -> Timed:
    cmd = [str(BIN / "dagster"), "asset", "materialize", *code, "--select", "*"]
    seconds = run(cmd, ws.env())
    return Timed(what, seconds, dataset, step_durations(ws.dagster_home))


def dbt_build(ws: Workspace, dataset: str) -> Timed:
    """`dbt build` on the warehouse a pipeline run left, as someone would type it."""
    target = ws.root / "dbt_target"
    target.mkdir()
    # dagster-dbt copies the project's partial parse file into each run's target; so do we.
    partial = settings.DEFAULT_DBT_PROJECT_DIR / "target" / "partial_parse.msgpack"
    if partial.exists():
        shutil.copy(partial, target / partial.name)
    cmd = [
        str(BIN / "dbt"),
        "build",
        "--project-dir",
        "dbt_project",
        "--profiles-dir",
        "dbt_project",
        "--target-path",
        str(target),
        "--log-path",
        str(ws.root / "dbt_logs"),
    ]
    return Timed("dbt build", run(cmd, ws.env()), dataset)


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(description=summary)
    parser.add_argument(
        "--orders",
        type=lambda s: int(float(s)),
        default=10**6,
        help="orders (and customers) in the large data set (default 1e6)",
    )
    args = parser.parse_args(argv)
    n = args.orders
    big = f"{n:,} orders"
    sample = "sample (100 customers)"
    in_process = ["-m", "jaffle_platform.definitions"]
    multiprocess = ["-f", str(REPO / "bench" / "multiprocess_definitions.py")]

    tmp = Path(tempfile.mkdtemp(prefix="jaffle-pipeline-bench-"))
    results: list[Timed] = []
    workspaces: list[Workspace] = []
    try:
        started = time.perf_counter()
        counts = generate(tmp / "raw", customers=n, orders=n, seed=SEED)
        print(
            f"generated {counts.customers:,} customers, {counts.orders:,} orders, "
            f"{counts.payments:,} payments in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        sample_dir = settings.SAMPLE_DATA_DIR
        plan = [
            ("big", big, tmp / "raw", "pipeline, in-process executor", in_process),
            ("sample-in", sample, sample_dir, "pipeline, in-process executor", in_process),
            ("sample-mp", sample, sample_dir, "pipeline, multiprocess executor", multiprocess),
        ]
        dbt_after = {"big", "sample-in"}
        for name, dataset, raw_dir, what, code in plan:
            ws = new_workspace(tmp, name, raw_dir)
            workspaces.append(ws)
            print(f"{dataset}: {what} ...", file=sys.stderr)
            results.append(materialize(ws, what, dataset, code))
            if name in dbt_after:
                print(f"{dataset}: dbt build ...", file=sys.stderr)
                results.append(dbt_build(ws, dataset))
    finally:
        dbt_target = settings.DEFAULT_DBT_PROJECT_DIR / "target"
        for ws in workspaces:
            remove_dbt_targets(dbt_target, run_ids(ws.dagster_home))
        shutil.rmtree(tmp, ignore_errors=True)

    dbt_seconds = {r.dataset: r.seconds for r in results if r.what == "dbt build"}
    rows = [
        [r.dataset, r.what, f"{r.seconds:.1f}", f"{r.seconds / dbt_seconds[r.dataset]:.2f}"]
        for r in results
    ]
    print("\nWall time, subprocess start to exit (ratio to dbt build on the same data)\n")
    print(table_text(["data", "what", "wall s", "ratio to dbt build"], rows))
    steps = [
        [r.dataset, r.what.removeprefix("pipeline, "), step, f"{seconds:.1f}"]
        for r in results
        for step, seconds in r.steps
    ]
    print("\nStep durations recorded by the Dagster instance\n")
    print(table_text(["data", "run", "step", "s"], steps))
    whole = next(r for r in results if r.dataset == big and r.what.startswith("pipeline"))
    verdict = "ok" if whole.seconds < TARGET_SECONDS else "MISS"
    print(
        f"\nWhole pipeline at {big} on {os.cpu_count()} cores: {whole.seconds:.1f} s "
        f"(target < {TARGET_SECONDS:.0f} s: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
