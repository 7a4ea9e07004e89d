"""Figures for the compose stack: cold start, Materialize all against dbt build, rebuild, sizes.

Brings up its own compose project (`jafflebench`) from the images `jaffle_stack.up` builds
(stand-in base images on machines without a registry), then prints:
- cold `up` (new containers and volumes, images built) until every service is healthy;
- "Materialize all" launched through GraphQL (as the generated admin), launch to SUCCESS, next to
  a plain `dbt build` of the same data in a container like a run's (median of --runs each), and
  the ratio;
- the user-code image rebuilt after a one-line code change (a temp copy of the repo);
- image sizes.
Prints figures, asserts nothing. Refuses to touch volumes another compose project created.

    uv run --frozen python -m bench.stack_bench [--runs 3] [--cold-up-only]

(as a module from the repository root, which puts the root, and so `jaffle_stack`, on sys.path).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jaffle_stack.compose import ROOT, TEST_INFRA, docker, foreign_resources, write_env_file
from jaffle_stack.stack import Stack

PROJECT = "jafflebench"
ENV_FILE = ROOT / ".stack" / "bench.env"


def sh(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> float:
    """Run a command, fail loudly, return its wall time in seconds."""
    start = time.monotonic()
    subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def refuse_foreign_volumes() -> None:
    foreign = foreign_resources(PROJECT)
    if foreign:
        sys.exit(
            f"stack_bench: {', '.join(foreign)} exist; stop that stack (and back up its "
            "volumes) first"
        )


def engine_time(stamp: str) -> float:
    """An engine timestamp (RFC 3339, nanoseconds) as epoch seconds."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    whole = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC).timestamp()
    return whole + float(f"0.{frac[:6] or '0'}")


def wait_ready(stack: Stack, start: float, services: int, timeout: float = 300) -> dict[str, float]:
    """Container name -> seconds from `start` (epoch) to its first passing healthcheck, or to its
    exit for a one-shot, from the engine's own timestamps. Polled every 0.25 s, because the
    engine keeps only a container's last five checks."""
    ready: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = docker(
            "ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.project}"
        ).split()  # fmt: skip
        infos = json.loads(docker("inspect", *ids)) if ids else []
        for info in infos:
            name, state = info["Name"].lstrip("/"), info["State"]
            if name in ready:
                continue
            if state["Status"] == "exited" and state["ExitCode"] == 0:
                ready[name] = engine_time(state["FinishedAt"]) - start
            elif (state.get("Health") or {}).get("Status") == "healthy":
                passed = [
                    engine_time(c["End"]) for c in state["Health"]["Log"] if c["ExitCode"] == 0
                ]
                ready[name] = min(passed) - start
        if len(ready) >= services:
            return ready
        time.sleep(0.25)
    raise TimeoutError(f"not every service ready after {timeout} s: {sorted(ready)}")


def image_size_mb(image: str) -> float:
    return int(docker("image", "inspect", "-f", "{{.Size}}", image).strip()) / 1e6


def rebuild_after_one_line_change(stack: Stack) -> tuple[float, float]:
    """(build of an unchanged copy, warm cache; build after one line of code changed)."""
    with tempfile.TemporaryDirectory(prefix="jaffle-rebuild-") as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(
            ROOT,
            copy,
            ignore=shutil.ignore_patterns(".venv", ".git", "data", "reports", ".stack", "target"),
        )
        env = {**os.environ, "PATH": f"/usr/bin:{os.environ['PATH']}", "DOCKER_BUILDKIT": "1"}
        build = [
            "/usr/bin/docker", "build", "-q", "-f", "docker/Dockerfile", "--target", "user_code",
            "--build-arg", f"PYTHON_BASE_IMAGE={stack.env['PYTHON_BASE_IMAGE']}",
            "-t", "jaffle-bench/user-code:rebuild", ".",
        ]  # fmt: skip
        unchanged = sh(*build, env=env, cwd=copy)
        definitions = copy / "user_code" / "jaffle_platform" / "definitions.py"
        definitions.write_text(definitions.read_text() + "\n# one-line change\n")
        changed = sh(*build, env=env, cwd=copy)
        docker("image", "rm", "-f", "jaffle-bench/user-code:rebuild", check=False)
        return unchanged, changed


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each timed pipeline")
    parser.add_argument(
        "--cold-up-only", action="store_true", help="only the cold `up`, --runs times"
    )
    args = parser.parse_args()

    sh("bash", str(TEST_INFRA / "engine.sh"))
    sh("bash", str(TEST_INFRA / "build_standins.sh"))
    refuse_foreign_volumes()
    stack = Stack(project=PROJECT, env_file=ENV_FILE)
    stack.env = write_env_file(ENV_FILE, PROJECT)
    stack.compose("down", "-v", "--remove-orphans", check=False)

    start = time.monotonic()
    stack.compose("build")
    build_s = time.monotonic() - start
    rows: list[tuple[str, str]] = [("images built (cache warm)", f"{build_s:.1f} s")]
    try:
        for run in range(args.runs if args.cold_up_only else 1):
            if run:
                stack.compose("down", "-v", "--remove-orphans")
            rows.append(("cold `up` to all services healthy", cold_up(stack)))
        if args.cold_up_only:
            return print_rows(rows)
        stack.auth = stack.read_admin_password()

        runs: list[float] = []
        for _ in range(args.runs):
            stack.wait_idle()
            start = time.monotonic()
            run = stack.wait_run(stack.launch_all_assets(), timeout=600, interval=0.5)
            assert run["status"] == "SUCCESS", run
            runs.append(time.monotonic() - start)
        stack.wait_idle()
        # The `duckdb` pool at run granularity: two refreshes launched together run one after
        # the other (the figure to compare with two single runs).
        start = time.monotonic()
        pair = [stack.launch_all_assets() for _ in range(2)]
        done = [stack.wait_run(run_id, timeout=600, interval=0.5) for run_id in pair]
        pair_s = time.monotonic() - start
        assert [r["status"] for r in done] == ["SUCCESS"] * 2, done
        (a_start, a_end), (b_start, _) = sorted((r["startTime"], r["endTime"]) for r in done)
        overlap = max(0.0, a_end - b_start)
        stack.wait_idle()
        # In a container like a run's: the user-code image with the warehouse volume.
        image = stack.user_code_image()
        dbt = [
            sh(
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                "jaffle_warehouse:/var/lib/jaffle/warehouse",
                image,
                "dbt",
                "build",
                "--quiet",
                "--project-dir",
                "/app/dbt_project",
                "--profiles-dir",
                "/app/dbt_project",
                "--target-path",
                "/tmp/dbt-bench",
            )  # fmt: skip
            for _ in range(args.runs)
        ]
        run_s, dbt_s = statistics.median(runs), statistics.median(dbt)
        rows += [
            (
                f"Materialize all, launch to SUCCESS (median of {args.runs})",
                f"{run_s:.1f} s  (all: {', '.join(f'{r:.1f}' for r in runs)})",
            ),
            (
                f"`dbt build` in a run-like container (median of {args.runs})",
                f"{dbt_s:.1f} s  (all: {', '.join(f'{d:.1f}' for d in dbt)})",
            ),
            ("Materialize all / dbt build", f"{run_s / dbt_s:.2f}x"),
            (
                "two Materialize all launched together, to both SUCCESS",
                f"{pair_s:.1f} s  (steps overlapping: {overlap:.1f} s)",
            ),
        ]
        unchanged, changed = rebuild_after_one_line_change(stack)
        rows += [
            ("user-code image rebuild, nothing changed", f"{unchanged:.1f} s"),
            ("user-code image rebuild after a one-line code change", f"{changed:.1f} s"),
        ]
        for service in ("user_code", "webserver"):
            image = stack.inspect(stack.container(service))["Config"]["Image"]
            rows.append((f"image size {image}", f"{image_size_mb(image):.0f} MB"))
    finally:
        stack.compose("down", "-v", "--remove-orphans", check=False)

    return print_rows(rows)


def cold_up(stack: Stack) -> str:
    """`up` with no container and no volume, to every service healthy (one-shots: exited)."""
    services = len(stack.services())
    epoch = time.time()
    stack.compose("up", "-d", "--no-build")
    ready = wait_ready(stack, epoch, services)
    stack.wait_healthy()
    last = max(ready, key=lambda name: ready[name])
    return f"{ready[last]:.1f} s  (last: {last}; load average {os.getloadavg()[0]:.1f})"


def print_rows(rows: list[tuple[str, str]]) -> int:
    width = max(len(k) for k, _ in rows)
    print(f"\n{'what':<{width}} | figure\n{'-' * width}-|-------")
    for key, value in rows:
        print(f"{key:<{width}} | {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
