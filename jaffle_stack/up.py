"""Bring the whole stack up on this machine from nothing and print the timings.

A Docker engine if none answers, the stand-in base images, the two project images, then
`compose up` and a wait until every service is healthy.

    uv run --frozen python -m jaffle_stack.up [--env-file .stack/stack.env]

Writes its settings to the env file (compose project `jaffle`, stand-in base images; gitignored)
unless that file exists, which is then used as it is (the stack tests write their own). Tear down:
    python3 -m jaffle_stack.compose --env-file .stack/stack.env down -v
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from jaffle_stack.compose import ONE_SHOT, ROOT, TEST_INFRA, Compose, read_env_file, write_env_file
from jaffle_stack.wait import Timeout

DEFAULT_ENV_FILE = ROOT / ".stack" / "stack.env"
DEFAULT_PROJECT = "jaffle"


def up(stack: Compose, healthy_timeout: float) -> None:
    """Engine, stand-ins, build, up, then every service healthy.

    Raises CalledProcessError (a script failed) or AssertionError (compose failed, or a service
    was not healthy in time: its state and `compose ps` are printed first)."""
    for script in ("engine.sh", "build_standins.sh"):
        subprocess.run(["bash", str(TEST_INFRA / script)], cwd=ROOT, check=True)

    start = time.monotonic()
    stack.compose_bytes("build", capture=False)
    print(f"up: images built in {time.monotonic() - start:.0f}s", flush=True)

    start = time.monotonic()
    stack.compose_bytes("up", "-d", "--no-build", capture=False)
    services = [s for s in stack.services() if s not in ONE_SHOT]
    try:
        stack.wait_healthy(healthy_timeout, interval=1)
    except Timeout:
        health = stack.health()
        print(f"up: after {healthy_timeout:.0f}s, services are {health}", file=sys.stderr)
        print(stack.compose("ps", check=False), file=sys.stderr)
        raise
    elapsed = time.monotonic() - start
    print(f"up: all {len(services)} services healthy {elapsed:.0f}s after up", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jaffle_stack.up", description=(__doc__ or "").strip().split("\n")[0]
    )
    parser.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE)
    parser.add_argument(
        "--healthy-timeout",
        type=float,
        default=float(os.environ.get("STACK_HEALTHY_TIMEOUT", "300")),
        help="seconds to wait for every service to be healthy (env STACK_HEALTHY_TIMEOUT)",
    )
    args = parser.parse_args()

    env_file: Path = args.env_file.resolve()
    if env_file.exists():
        env = read_env_file(env_file)
    else:
        env = write_env_file(env_file, DEFAULT_PROJECT)
    project = env.get("COMPOSE_PROJECT_NAME") or DEFAULT_PROJECT
    try:
        up(Compose(project=project, env_file=env_file, env=env), args.healthy_timeout)
    except (AssertionError, subprocess.CalledProcessError) as e:
        print(f"up: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
