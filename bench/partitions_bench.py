"""A full refresh of a history of daily files against one new day, through Dagster, in-process.

    uv run --frozen python bench/partitions_bench.py --orders 1e6 [--orders 1e7 ...]
        [--per-day 100000] [--data-dir ~/.cache/jaffle-platform-bench] [--instance ephemeral]
        [--keep] [--generate-only]

For each history of N orders (N / per-day days of per-day new orders, plus status changes and
late payments: `jaffle-generate --days D+1 --orders-per-day K`, written once into
`<data-dir>/daily-<D+1>x<K>/` and reused), in a fresh workspace under the data dir:

1. the full refresh: every asset (`--select '*'`) for the history's days as one run, as
   `dagster asset materialize --partition-range FIRST...LAST` starts it, tagged
   `jaffle/full_refresh=true` (dbt --full-refresh and every test on every row), on an empty
   warehouse;
2. the next day: every asset for that day alone, as `--partition DAY` starts it;
3. that day again, with a customer list in which one customer is renamed and one is new (a day
   whose customer export changed too: raw_customers is loaded and customers reconciled).

Each run is a fresh Python process (this script with --child-run) that imports the code
location and calls `execute_in_process` on the implicit asset job (the CLI's code path), with an
in-memory instance, or with DAGSTER_HOME's SQLite files under --instance sqlite. The parent
samples the RSS of that process and its children (dbt) every 0.1 s with psutil and reads the
load average; the child reports its step timings from the instance, dbt's phases from its log,
dbt's per-node times from the run's run_results.json, and how many dbt invocations the run
made. Figures are printed (and saved as JSON in the data dir); nothing is asserted. The
workspace (warehouse, snapshot) is removed unless --keep; the generated files stay for the next
run (10^8 orders: 7.8 GB of CSV, 8 to 16 minutes to make; --generate-only makes them and stops).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from tables import table_text  # bench/ is on sys.path when a script here runs

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
START = dt.date(2018, 1, 1)
SEED = 42
GIB = 1024**3
MIB = 1024**2
FULL_REFRESH_TAG = "jaffle/full_refresh"
DBT_STEP = "jaffle_shop_dbt_assets"
# Mirrors dagster_home/dagster.yaml: every warehouse step is in pool `duckdb`, one slot.
DAGSTER_YAML = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""


def dbt_log_marks(path: Path) -> dict:
    """When dbt reached each phase of its run, from its JSON log (epoch seconds), why it
    parsed what it parsed, and its own resource report."""
    marks: dict = {}
    if not path.exists():
        return marks
    for line in path.read_text().splitlines():
        try:
            info = json.loads(line)
        except ValueError:
            continue
        data, meta = info.get("data", {}), info.get("info", {})
        ts = dt.datetime.fromisoformat(meta["ts"].replace("Z", "+00:00")).timestamp()
        code, msg = meta.get("code"), meta.get("msg", "")
        for mark, hit in (
            ("started", code == "A001"),
            ("adapter", code == "E034"),
            ("found", code == "W006"),  # Found 5 models, ...: parsed
            ("concurrency", code == "Q027"),
            ("finished", code == "E047"),  # Finished running ...: the nodes are done
            ("completed", code == "Q039"),  # Command `dbt build` succeeded: artifacts written
        ):
            if hit and mark not in marks:
                marks[mark] = ts
        if code == "I024":
            marks["parse"] = msg
        if code == "Z051":
            marks["wall"] = data.get("command_wall_clock_time")
            marks["maxrss_kib"] = data.get("process_mem_max_rss")
        marks["last"] = ts
    return marks


def copy_log(log: Path, out: Path) -> str | None:
    """Keeps dbt's log beside the run's result (the run's target dir is removed)."""
    if not log.exists():
        return None
    kept = out.with_name(out.name.replace(".result.json", ".dbt.log"))
    shutil.copyfile(log, kept)
    return str(kept)


# --- The child: one run, in-process ----------------------------------------------------------


def child_run(spec_path: Path) -> None:
    """Runs in a fresh process: one run of every asset; writes what it saw to spec['out']."""
    spawned = float(os.environ["BENCH_SPAWNED_AT"])
    began = time.time()
    import dagster as dg
    import duckdb

    from jaffle_platform import settings
    from jaffle_platform.definitions import defs

    imported = time.time()
    spec = json.loads(spec_path.read_text())
    job = defs.resolve_implicit_global_asset_job_def()
    tags = dict(spec.get("tags", {}))
    where: dict = {}
    if "partition" in spec:
        where["partition_key"] = spec["partition"]
    else:
        first, last = spec["range"]
        tags |= {
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        }
    ephemeral = spec.get("instance") == "ephemeral"
    with dg.DagsterInstance.ephemeral() if ephemeral else dg.DagsterInstance.get() as instance:
        resolved = time.time()
        result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False, **where)
        returned = time.time()
        run_id = result.run_id
        record = instance.get_run_record_by_id(run_id)
        assert record is not None
        steps = [
            {"step": s.step_key, "start": s.start_time, "end": s.end_time, "status": str(s.status)}
            for s in sorted(instance.get_run_step_stats(run_id), key=lambda s: s.start_time or 0.0)
        ]
        failures = [
            e.message
            for e in instance.all_logs(run_id)
            if e.dagster_event is not None and e.dagster_event.is_step_failure
        ]
    # One target dir per dbt invocation of the run (dagster-dbt names it after the run id).
    dbt_runs = []
    for target in sorted(
        (settings.dbt_project_dir() / "target").glob(f"{DBT_STEP}-{run_id[:7]}-*")
    ):
        results_file = target / "run_results.json"
        if results_file.exists():
            results = json.loads(results_file.read_text())
            dbt_runs.append(
                {
                    "args": results.get("args", {}).get("which"),
                    "vars": results.get("args", {}).get("vars"),
                    "elapsed": results.get("elapsed_time"),
                    "log": dbt_log_marks(target / "dbt.log"),
                    "log_copy": copy_log(target / "dbt.log", Path(spec["out"])),
                    "nodes": [
                        {
                            "id": r["unique_id"],
                            "seconds": r["execution_time"],
                            "status": r["status"],
                            "timing": r.get("timing", []),
                        }
                        for r in results["results"]
                    ],
                }
            )
        shutil.rmtree(target, ignore_errors=True)
    counts: dict[str, int] = {}
    if result.success:
        con = duckdb.connect(str(settings.duckdb_path()), read_only=True)
        try:
            for table in (
                "jaffle_shop.raw_orders",
                "jaffle_shop.raw_payments",
                "jaffle_shop.raw_customers",
                "main.orders",
                "main.customers",
            ):
                (counts[table],) = con.execute(f"select count(*) from {table}").fetchone()  # type: ignore[misc]
        finally:
            con.close()
    warehouse = settings.duckdb_path()
    snapshot = settings.snapshot_dir() / "warehouse.duckdb"
    out = {
        "success": result.success,
        "failures": failures,
        "run_id": run_id,
        "spawned": spawned,
        "began": began,
        "imported": imported,
        "resolved": resolved,
        "run_start": record.start_time,
        "run_end": record.end_time,
        "returned": returned,
        "exiting": time.time(),
        "steps": steps,
        "dbt_runs": dbt_runs,
        "counts": counts,
        "warehouse_bytes": warehouse.stat().st_size if warehouse.exists() else 0,
        "snapshot_bytes": snapshot.stat().st_size if snapshot.exists() else 0,
        # Peak RSS of this process, and of the largest of its waited-for children (dbt).
        "self_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "children_maxrss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    }
    Path(spec["out"]).write_text(json.dumps(out))


# --- The parent: data, workspaces, sampling --------------------------------------------------


@dataclass
class Sampled:
    """What the parent saw of one run's process tree."""

    wall: float = 0.0
    peak_tree: int = 0
    peak_self: int = 0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_samples: list[float] = field(default_factory=list)
    # pid -> [command, started, last seen, peak RSS]
    children: dict[int, list] = field(default_factory=dict)


def dataset(data_dir: Path, days: int, per_day: int) -> tuple[Path, float | None]:
    """The cached files of `days` days of `per_day` orders; (path, generation seconds or None
    when they were there already)."""
    out = data_dir / f"daily-{days}x{per_day}"
    marker = out / "COMPLETE.json"
    if marker.exists():
        return out, None
    started = time.perf_counter()
    print(f"generating {days} days x {per_day:,} orders into {out} ...", file=sys.stderr)
    proc = subprocess.run(
        [
            str(BIN / "jaffle-generate"),
            "--days",
            str(days),
            "--orders-per-day",
            str(per_day),
            "--seed",
            str(SEED),
            "--start",
            START.isoformat(),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in out.rglob("*.csv"))
    marker.write_text(
        json.dumps({"generated": proc.stdout.strip(), "seconds": seconds, "bytes": size})
    )
    return out, seconds


def changed_customers(data: Path, root: Path, day: dt.date) -> Path:
    """A copy of `day`'s files beside a customer list with one customer renamed and one new:
    the day replayed on a day the customer export changed too."""
    out = root / "changed-customers"
    for table in ("raw_orders", "raw_payments"):
        (out / table).mkdir(parents=True)
        shutil.copyfile(data / table / f"{day}.csv", out / table / f"{day}.csv")
    lines = (data / "raw_customers.csv").read_text().splitlines(keepends=True)
    first_id, _, rest = lines[1].partition(",")
    last_id = lines[-1].split(",", 1)[0]
    lines[1] = f"{first_id},Renamed,{rest.split(',', 1)[1]}"
    lines.append(f"{int(last_id) + 1},Ada,L.\n")
    (out / "raw_customers.csv").write_text("".join(lines))
    return out


def run_child(root: Path, name: str, spec: dict, env: dict[str, str]) -> tuple[dict, Sampled]:
    spec_path = root / f"{name}.spec.json"
    spec = {**spec, "out": str(root / f"{name}.result.json")}
    spec_path.write_text(json.dumps(spec))
    sampled = Sampled(load_before=os.getloadavg())
    log = root / f"{name}.log"
    started = time.time()
    with open(log, "w") as log_file:
        proc = psutil.Popen(
            [sys.executable, __file__, "--child-run", str(spec_path)],
            cwd=REPO,
            env={**env, "BENCH_SPAWNED_AT": repr(started)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        skew = proc.create_time() - started
        next_load = time.time()
        while proc.poll() is None:
            try:
                tree = [proc, *proc.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            total = 0
            now = time.time()
            for p in tree:
                try:
                    rss = p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                total += rss
                if p.pid == proc.pid:
                    sampled.peak_self = max(sampled.peak_self, rss)
                    continue
                seen = sampled.children.get(p.pid)
                if seen is None:
                    try:
                        command = " ".join(Path(a).name for a in p.cmdline()[1:3])
                        # psutil's start times come from the boot time, which drifts
                        # from the wall clock: corrected by the child's own offset.
                        created = p.create_time() - skew
                    except psutil.NoSuchProcess:
                        continue
                    sampled.children[p.pid] = seen = [command, created, now, 0]
                seen[2] = now
                seen[3] = max(seen[3], rss)
            sampled.peak_tree = max(sampled.peak_tree, total)
            if now >= next_load:
                sampled.load_samples.append(os.getloadavg()[0])
                next_load = now + 5
            time.sleep(0.1)
    sampled.wall = time.time() - started
    sampled.load_after = os.getloadavg()
    result_file = Path(spec["out"])
    if proc.returncode != 0 or not result_file.exists():
        raise SystemExit(
            f"{name}: child failed ({proc.returncode}); log {log}:\n" + log.read_text()[-4000:]
        )
    result = json.loads(result_file.read_text())
    if not result["success"]:
        raise SystemExit(f"{name}: run failed: {result['failures']}; log {log}")
    return result, sampled


@dataclass
class Figures:
    """One run's breakdown, seconds unless named otherwise."""

    name: str
    result: dict
    sampled: Sampled

    @property
    def wall(self) -> float:
        return self.sampled.wall

    def step(self, key: str) -> float:
        for s in self.result["steps"]:
            if s["step"] == key:
                return (s["end"] or 0.0) - (s["start"] or 0.0)
        return 0.0

    def dbt_processes(self) -> list[list]:
        return [c for c in self.sampled.children.values() if c[0].startswith("dbt")]

    def dbt_step_window(self) -> tuple[float, float]:
        for s in self.result["steps"]:
            if s["step"] == DBT_STEP:
                return s["start"] or 0.0, s["end"] or 0.0
        return 0.0, 0.0

    def dbt_in_step(self) -> list[list]:
        start, end = self.dbt_step_window()
        return [c for c in self.dbt_processes() if start <= c[1] <= end]

    def breakdown(self) -> list[tuple[str, float]]:
        r = self.result
        steps = {s["step"] for s in r["steps"]}
        step_sum = sum(self.step(s) for s in steps)
        step_start, step_end = self.dbt_step_window()
        rows = [
            ("Dagster start-up: interpreter, imports, definitions", r["imported"] - r["spawned"]),
            ("Dagster start-up: job, instance, run start", r["run_start"] - r["imported"]),
        ]
        for key in ("raw_customers", "raw_orders", "raw_payments"):
            rows.append((f"step {key}", self.step(key)))
        rows.append((f"step {DBT_STEP}", self.step(DBT_STEP)))
        builds = self.dbt_in_step()
        if len(builds) == 1 and len(r["dbt_runs"]) == 1:
            (_, began, last_seen, _), log = builds[0], r["dbt_runs"][0]["log"]
            found = log.get("found", log.get("concurrency", began))
            rows += [
                ("  step start to dbt process start", began - step_start),
                ("  dbt: interpreter, imports", log.get("started", began) - began),
                ("  dbt: adapter, profile, parse (start-up)", found - log.get("started", began)),
                ("  dbt: nodes, 2 threads", log.get("finished", found) - found),
                ("  dbt: artifacts", log.get("completed", found) - log.get("finished", found)),
                ("  dbt: exit (sampled, +-0.1 s)", last_seen - log.get("completed", last_seen)),
                ("  after dbt: events, row counts, docs", step_end - last_seen),
            ]
        rows += [
            ("step order_count_chart", self.step("order_count_chart")),
            ("step warehouse_snapshot", self.step("warehouse_snapshot")),
            ("run: between and around steps", (r["run_end"] - r["run_start"]) - step_sum),
            ("after the run to exit", self.sampled.wall - (r["run_end"] - r["spawned"])),
        ]
        return rows


def dbt_nodes(fig: Figures) -> dict[str, float]:
    return {n["id"]: n["seconds"] for d in fig.result["dbt_runs"] for n in d["nodes"]}


def report(
    n: int,
    days: int,
    per_day: int,
    gen: float | None,
    data: Path,
    full: Figures,
    day: Figures,
    changed: Figures,
) -> dict:
    meta = json.loads((data / "COMPLETE.json").read_text())
    print(f"\n## History of {n:,} orders: {days} days x {per_day:,}, then day {days + 1}\n")
    gen_text = f"{gen:.0f} s" if gen is not None else f"cached ({meta['seconds']:.0f} s when made)"
    print(
        f"data: {data} ({meta['bytes'] / GIB:.2f} GiB of CSV, generation {gen_text}); "
        f"{meta['generated']}"
    )
    runs = (full, day, changed)
    rows = []
    for parts in zip(*(f.breakdown() for f in runs), strict=True):
        rows.append([parts[0][0], *(f"{seconds:.2f}" for _, seconds in parts)])
    rows.append(["wall, process start to exit", *(f"{f.wall:.2f}" for f in runs)])
    rows.append(
        [
            "dbt processes in the run / in the dbt step / run_results",
            *(
                f"{len(f.dbt_processes())} / {len(f.dbt_in_step())} / {len(f.result['dbt_runs'])}"
                for f in runs
            ),
        ]
    )
    rows.append(
        [
            "dbt parse",
            *(
                "; ".join(
                    d["log"].get("parse", "partial parse") for d in f.result["dbt_runs"]
                ).removeprefix("Unable to do partial parsing because ")
                for f in runs
            ),
        ]
    )
    for label, get in (
        ("peak RSS, process + children (sampled), MiB", lambda f: f.sampled.peak_tree),
        ("peak RSS, Dagster process (ru_maxrss), MiB", lambda f: f.result["self_maxrss"]),
        ("peak RSS, dbt (ru_maxrss of children), MiB", lambda f: f.result["children_maxrss"]),
    ):
        rows.append([label, *(f"{get(f) / MIB:,.0f}" for f in runs)])
    for label, get in (
        ("load average before (1, 5, 15 min)", lambda f: f.sampled.load_before),
        ("load average after (1, 5, 15 min)", lambda f: f.sampled.load_after),
    ):
        rows.append([label, *(" ".join(f"{x:.1f}" for x in get(f)) for f in runs)])
    rows.append(
        [
            "load average (1 min) during: min-max",
            *(
                f"{min(f.sampled.load_samples, default=0):.1f}"
                f"-{max(f.sampled.load_samples, default=0):.1f}"
                for f in runs
            ),
        ]
    )
    headers = ["full refresh s", "one day s", "day again, customers changed s"]
    print(table_text(["", *headers], rows))

    full_nodes, day_nodes, changed_nodes = dbt_nodes(full), dbt_nodes(day), dbt_nodes(changed)
    node_rows = []
    for node in sorted(full_nodes, key=lambda x: -full_nodes[x]):
        if node.startswith("model."):
            node_rows.append(
                [
                    node.removeprefix("model.jaffle_shop."),
                    f"{full_nodes[node]:.2f}",
                    f"{day_nodes.get(node, 0):.2f}",
                    f"{changed_nodes.get(node, 0):.2f}",
                ]
            )
    # The slowest data tests of either run by name, the others summed.
    tests = [k for k in full_nodes if k.startswith("test.")]
    slowest = set(sorted(tests, key=lambda k: -day_nodes.get(k, 0))[:4])
    slowest |= set(sorted(tests, key=lambda k: -full_nodes[k])[:4])
    slowest |= set(sorted(tests, key=lambda k: -changed_nodes.get(k, 0))[:4])
    for node in sorted(slowest, key=lambda k: -full_nodes[k]):
        name = node.removeprefix("test.jaffle_shop.").rsplit(".", 1)[0]
        node_rows.append(
            [
                f"test {name}",
                f"{full_nodes[node]:.2f}",
                f"{day_nodes.get(node, 0):.2f}",
                f"{changed_nodes.get(node, 0):.2f}",
            ]
        )
    for kind in ("test.", "unit_test."):
        per_run = [
            [v for k, v in nodes.items() if k.startswith(kind)]
            for nodes in (full_nodes, day_nodes, changed_nodes)
        ]
        node_rows.append(
            [
                f"{kind.rstrip('.')}s ({' / '.join(str(len(x)) for x in per_run)})",
                *(f"{sum(x):.2f}" for x in per_run),
            ]
        )
    print("\ndbt per node (run_results.json execution_time)\n")
    print(table_text(["node", *headers], node_rows))
    counts = day.result["counts"]
    print(
        "\nafter the day: "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items())
        + f"; warehouse {day.result['warehouse_bytes'] / GIB:.2f} GiB, "
        f"snapshot {day.result['snapshot_bytes'] / GIB:.2f} GiB"
    )
    ratio = day.wall / full.wall
    saved = data.parent / f"partitions-{n}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    saved.write_text(
        json.dumps(
            {
                "orders": n,
                "rows": rows,
                "nodes": node_rows,
                "counts": counts,
                "full": {"result": full.result, "sampled": full.sampled.__dict__},
                "day": {"result": day.result, "sampled": day.sampled.__dict__},
                "changed": {"result": changed.result, "sampled": changed.sampled.__dict__},
            },
            default=str,
        )
    )
    print(f"(figures saved in {saved})")
    print(f"\none day / full refresh: {day.wall:.1f} s / {full.wall:.1f} s = {ratio:.1%}")
    print(
        f"the day again, customer list changed / full refresh: {changed.wall:.1f} s / "
        f"{full.wall:.1f} s = {changed.wall / full.wall:.1%}"
    )
    return {
        "orders": n,
        "full": full.wall,
        "day": day.wall,
        "changed": changed.wall,
        "ratio": ratio,
        "peak_full": full.sampled.peak_tree,
        "peak_day": max(day.sampled.peak_tree, changed.sampled.peak_tree),
    }


def bench(n: int, per_day: int, data_dir: Path, keep: bool, instance: str) -> dict:
    days = max(1, n // per_day)
    data, gen = dataset(data_dir, days + 1, per_day)
    first = START
    last = START + dt.timedelta(days=days - 1)
    new_day = last + dt.timedelta(days=1)
    root = Path(tempfile.mkdtemp(prefix=f"partitions-{n}-", dir=data_dir))
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {
        **os.environ,
        "RAW_DATA_URI": str(data),
        "DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "REPORTS_DIR": str(root / "reports"),
        "SNAPSHOT_DIR": str(root / "snapshot"),
        "LANDING_DIR": str(root / "landing"),
        "DAGSTER_HOME": str(home),
        "JAFFLE_PARTITIONS_START": first.isoformat(),
    }
    try:
        print(f"{n:,}: full refresh {first}...{last} ...", file=sys.stderr)
        full = Figures(
            "full",
            *run_child(
                root,
                "full",
                {
                    "range": [first.isoformat(), last.isoformat()],
                    "tags": {FULL_REFRESH_TAG: "true"},
                    "instance": instance,
                },
                env,
            ),
        )
        print(f"{n:,}: full refresh {full.wall:.1f} s; day {new_day} ...", file=sys.stderr)
        day = Figures(
            "day",
            *run_child(root, "day", {"partition": new_day.isoformat(), "instance": instance}, env),
        )
        print(
            f"{n:,}: day {day.wall:.1f} s; the day again, customer list changed ...",
            file=sys.stderr,
        )
        changed = Figures(
            "changed",
            *run_child(
                root,
                "changed",
                {"partition": new_day.isoformat(), "instance": instance},
                {**env, "RAW_DATA_URI": str(changed_customers(data, root, new_day))},
            ),
        )
        return report(n, days, per_day, gen, data, full, day, changed)
    finally:
        if keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(description=summary)
    parser.add_argument(
        "--orders",
        type=lambda s: int(float(s)),
        action="append",
        help="orders of history (repeatable; default 1e6)",
    )
    parser.add_argument("--per-day", type=lambda s: int(float(s)), default=100_000)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path.home() / ".cache" / "jaffle-platform-bench",
        help="where generated files are cached and workspaces made",
    )
    parser.add_argument("--keep", action="store_true", help="keep the workspaces")
    parser.add_argument(
        "--instance",
        choices=("ephemeral", "sqlite"),
        default="ephemeral",
        help="the runs' Dagster instance: in memory (default, as the tests), or DAGSTER_HOME's "
        "SQLite files (one write per event: a range run writes 2 events per asset and day)",
    )
    parser.add_argument(
        "--generate-only", action="store_true", help="make the cached files, run nothing"
    )
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"{os.cpu_count()} cores, {psutil.virtual_memory().total / GIB:.1f} GiB RAM",
        file=sys.stderr,
    )
    if args.generate_only:
        for n in args.orders or [10**6]:
            data, seconds = dataset(args.data_dir, max(1, n // args.per_day) + 1, args.per_day)
            print(f"{data}: " + ("cached" if seconds is None else f"made in {seconds:.0f} s"))
        return 0
    # The code location's dbt manifest, made before any timing, as the image build makes it
    # (a fresh checkout would otherwise parse the project in the first run's import); and the
    # code location imported once, so both runs start with the same warm file cache.
    subprocess.run(
        [sys.executable, "-c", "import jaffle_platform.definitions"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    summary_rows = []
    for n in args.orders or [10**6]:
        s = bench(n, args.per_day, args.data_dir, args.keep, args.instance)
        summary_rows.append(
            [
                f"{n:,}",
                f"{s['full']:.1f}",
                f"{s['day']:.1f}",
                f"{s['ratio']:.1%}",
                f"{s['changed']:.1f}",
                f"{s['changed'] / s['full']:.1%}",
                f"{s['peak_full'] / GIB:.2f}",
                f"{s['peak_day'] / GIB:.2f}",
            ]
        )
    print("\n## Summary\n")
    print(
        table_text(
            [
                "orders of history",
                "full refresh s",
                "one day s",
                "day / full",
                "day, customers changed s",
                "that / full",
                "peak RSS full GiB",
                "peak RSS day GiB",
            ],
            summary_rows,
        )
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child-run":
        child_run(Path(sys.argv[2]))
    else:
        sys.exit(main())
