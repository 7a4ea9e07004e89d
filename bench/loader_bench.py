"""Time and peak memory of the project's CSV loader against the tutorial's pandas load, per size.

For each size N the generator writes N customers and N orders (seed 1) to a temp dir; then each
measurement runs in a fresh child process that loads raw_orders.csv into a fresh DuckDB file,
either with `load_raw_table` (typed DuckDB read, validation, atomic swap) or as the Dagster+dbt
tutorial does (`pandas.read_csv`, then `create or replace table ... as select * from df`).
Peak RSS is the child's `ru_maxrss` from `os.wait4`; the floor is a child that imports the same
modules and loads nothing. Figures are printed, nothing is asserted.

    uv run --frozen python bench/loader_bench.py [--sizes 1e4,1e5,1e6,1e7] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tables import table_text  # bench/ is on sys.path when a script here runs

# The parent stays on the standard library: a child started with vfork inherits the parent's
# high-water RSS in ru_maxrss, so the parent must stay below the children's import floor.

DEFAULT_SIZES = (10**4, 10**5, 10**6, 10**7)
QUICK_SIZES = (10**4, 10**5)
METHODS = ("loader", "pandas")
FLOOR = "floor"
SEED = 1
# At and above this size one run is enough: a 10^7 load takes long enough to be stable.
SINGLE_RUN_FROM = 10**7
TARGET_FROM = 10**6
TARGET_SPEED = 5.0
TARGET_MEMORY = 1 / 3
MIB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    seconds: float
    rows: int
    maxrss_mib: float
    hwm_mib: float


def _vm_hwm_mib() -> float:
    """This process's own RSS high-water mark (VmHWM), to cross-check ru_maxrss."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child_main(method: str, csv_path: str, db_path: str, table: str) -> None:
    """Runs in the child: one load (or none, for the floor) and one JSON line on stdout."""
    # Every child imports the same modules, so the floor is the same for every method.
    import duckdb
    import pandas as pd

    from jaffle_platform.defs.ingest.loader import RAW_TABLES, load_raw_table

    rows = 0
    start = time.perf_counter()
    if method == "loader":
        con = duckdb.connect(db_path)
        rows = load_raw_table(con, RAW_TABLES[table], Path(csv_path)).num_rows
        con.close()
    elif method == "pandas":
        # The Dagster+dbt tutorial's raw asset, verbatim apart from the names.
        data = pd.read_csv(csv_path)
        con = duckdb.connect(db_path)
        con.execute("create schema if not exists jaffle_shop")
        con.execute(f"create or replace table jaffle_shop.{table} as select * from data")
        con.close()
        rows = len(data)
    elif method != FLOOR:
        raise SystemExit(f"unknown method {method}")
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rows": rows, "hwm_mib": _vm_hwm_mib()}))


def run_child(args: list[str]) -> tuple[dict, float]:
    """Run this script as a child; return its JSON line and its ru_maxrss in MiB."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=err
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.stdout.close()
        # os.wait4 reaps the child and hands back its own rusage (ru_maxrss in KiB on Linux);
        # Popen.wait would reap it first and lose the figure.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"child {args} failed ({proc.returncode}):\n{err.read().decode()}")
    return json.loads(out.decode().strip().splitlines()[-1]), usage.ru_maxrss / 1024


def measure(method: str, csv_path: Path, db_path: Path, table: str) -> Sample:
    try:
        result, maxrss = run_child(["--child", method, str(csv_path), str(db_path), table])
    finally:
        for p in (db_path, db_path.with_name(db_path.name + ".wal")):
            p.unlink(missing_ok=True)
    return Sample(result["seconds"], result["rows"], maxrss, result["hwm_mib"])


def median(samples: list[Sample]) -> Sample:
    return Sample(
        seconds=statistics.median(s.seconds for s in samples),
        rows=samples[0].rows,
        maxrss_mib=statistics.median(s.maxrss_mib for s in samples),
        hwm_mib=statistics.median(s.hwm_mib for s in samples),
    )


def parse_sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(description=summary)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=None,
        help="comma-separated order counts, e.g. 1e4,1e5 (default 1e4,1e5,1e6,1e7)",
    )
    parser.add_argument("--quick", action="store_true", help="sizes 1e4,1e5 and one run each")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per measurement below 1e7 (default 3)"
    )
    parser.add_argument("--table", default="raw_orders", help="raw table to load (raw_orders)")
    args = parser.parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    csv_name = f"{args.table}.csv"

    per_method: list[list[str]] = []
    ratios: list[list[str]] = []
    tmp_root = Path(tempfile.mkdtemp(prefix="jaffle-loader-bench-"))
    try:
        for n in sizes:
            repeats = 1 if args.quick or n >= SINGLE_RUN_FROM else args.repeats
            data_dir = tmp_root / f"n{n}"
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, __file__, "--generate", str(n), str(data_dir)], check=True
            )
            csv_path = data_dir / csv_name
            size_mib = csv_path.stat().st_size / MIB
            print(
                f"N={n:,}: generated in {time.perf_counter() - started:.1f} s, "
                f"{csv_name} {size_mib:.1f} MiB; {repeats} run(s) per method",
                file=sys.stderr,
            )
            runs: dict[str, list[Sample]] = {m: [] for m in (FLOOR, *METHODS)}
            # Methods interleaved, so a drift in the machine hits both alike.
            for i in range(repeats):
                for method in (FLOOR, *METHODS):
                    db_path = tmp_root / f"{method}-{i}.duckdb"
                    runs[method].append(measure(method, csv_path, db_path, args.table))
            floor = median(runs[FLOOR])
            med = {m: median(runs[m]) for m in METHODS}
            for m in METHODS:
                s = med[m]
                drift = abs(s.maxrss_mib - s.hwm_mib) / s.hwm_mib
                note = "" if drift < 0.05 else f" (VmHWM {s.hwm_mib:.0f})"
                per_method.append(
                    [
                        f"{n:,}",
                        f"{size_mib:.1f}",
                        m,
                        str(repeats),
                        f"{s.seconds:.3f}",
                        f"{s.rows / s.seconds:,.0f}",
                        f"{s.maxrss_mib:.0f}{note}",
                        f"{floor.maxrss_mib:.0f}",
                        f"{s.maxrss_mib - floor.maxrss_mib:.0f}",
                    ]
                )
            lo, pd_ = med["loader"], med["pandas"]
            speed = pd_.seconds / lo.seconds
            memory = lo.maxrss_mib / pd_.maxrss_mib
            net_lo = lo.maxrss_mib - floor.maxrss_mib
            net_pd = pd_.maxrss_mib - floor.maxrss_mib
            net = net_lo / net_pd if net_pd > 0 else float("nan")
            if n >= TARGET_FROM:
                verdict = (
                    f"speed {'ok' if speed >= TARGET_SPEED else 'MISS'}, "
                    f"memory {'ok' if memory <= TARGET_MEMORY else 'MISS'}"
                )
            else:
                verdict = "-"
            ratios.append([f"{n:,}", f"{speed:.2f}", f"{memory:.2f}", f"{net:.2f}", verdict])
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)

    print(f"\nLoading {csv_name} into a fresh DuckDB file (median of the runs)\n")
    print(
        table_text(
            [
                "orders",
                "CSV MiB",
                "method",
                "runs",
                "load s",
                "rows/s",
                "peak RSS MiB",
                "floor MiB",
                "over floor MiB",
            ],
            per_method,
        )
    )
    print(
        "\nRatios: speed = pandas s / loader s (target >= 5); "
        "memory = loader RSS / pandas RSS (target <= 0.33), at >= 10^6 orders\n"
    )
    print(
        table_text(
            ["orders", "speed ratio", "memory ratio", "memory ratio over floor", "target"], ratios
        )
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child_main(*sys.argv[2:6])
    elif len(sys.argv) == 4 and sys.argv[1] == "--generate":
        from jaffle_platform.generate import generate

        n = int(sys.argv[2])
        generate(Path(sys.argv[3]), customers=n, orders=n, seed=SEED)
    else:
        sys.exit(main())
