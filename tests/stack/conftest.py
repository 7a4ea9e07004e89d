"""One compose stack for the whole session: brought up once, torn down with its volumes.

Without a Docker engine the stack tests skip, unless JAFFLE_REQUIRE_STACK=1 (CI) makes that a
failure. The stack uses fixed volume names (docker-compose.yml); the fixture refuses to run when
they exist and belong to another compose project, so it never deletes someone's data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.stack.stack import (
    HERE,
    ROOT,
    STOP_SCHEDULE,
    ObservedRun,
    ScheduleTick,
    Stack,
    docker,
    foreign_resources,
    observe_run,
    poll,
    write_env_file,
)

PROJECT = "jaffletest"
ENV_FILE = ROOT / ".stack" / "test.env"
# The test stack's landing folder: never the checkout's own ./landing.
LANDING = ROOT / ".stack" / "landing-test"


def _engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no `docker` client on PATH"
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"`docker info` failed: {last_line}"
    return None


def _refuse_foreign_resources() -> None:
    """Fail when a fixed-name volume or network exists and is not this test project's."""
    foreign = foreign_resources(PROJECT)
    if foreign:
        pytest.fail(
            "refusing to run the stack tests: they would reuse or delete "
            + ", ".join(foreign)
            + f", which the test project '{PROJECT}' did not create. Stop that stack and remove "
            "or back up these volumes yourself (see docs/stack.md), then run the tests again.",
            pytrace=False,
        )


def _write_env_file() -> dict[str, str]:
    return write_env_file(
        ENV_FILE,
        PROJECT,
        DAGSTER_WEBSERVER_PORT="3000",
        REPORTS_PORT="8080",
        REPORTS_BASE_URL="http://localhost:8080",
        # Every minute, so the daemon's schedule tick is seen within the test.
        JAFFLE_SCHEDULE_CRON="* * * * *",
        JAFFLE_SCHEDULE_TIMEZONE="UTC",
        JAFFLE_LANDING_DIR=str(LANDING),
        # Short, so the landing tests wait seconds rather than the default 20 s.
        JAFFLE_LANDING_STABLE_SECONDS="4",
    )


def _remove_run_containers(stack: Stack) -> None:
    # Only containers that mount this stack's warehouse: run containers of this test project.
    ids = docker(
        "ps",
        "-aq",
        "--filter",
        "label=dagster/run_id",
        "--filter",
        "volume=jaffle_warehouse",
        check=False,
    ).split()
    if ids:
        docker("rm", "-f", *ids, check=False)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    problem = _engine_problem()
    if problem:
        message = f"no Docker engine reachable ({problem}); the compose stack cannot run"
        if os.environ.get("JAFFLE_REQUIRE_STACK") == "1":
            pytest.fail(f"JAFFLE_REQUIRE_STACK=1 but {message}", pytrace=False)
        pytest.skip(f"{message}: start one with `bash tests/stack/engine.sh`")

    _refuse_foreign_resources()
    stack = Stack(project=PROJECT, env_file=ENV_FILE)
    if ENV_FILE.exists():
        # Leftovers of an interrupted session of this same test project: start clean.
        _remove_run_containers(stack)
        stack.compose("down", "-v", "--remove-orphans", check=False)
    stack.env = _write_env_file()
    shutil.rmtree(LANDING, ignore_errors=True)
    LANDING.mkdir(parents=True)

    started = time.monotonic()
    up = subprocess.run(
        ["bash", str(HERE / "up.sh")],
        cwd=ROOT,
        env={**stack.process_env(), "STACK_ENV_FILE": str(ENV_FILE)},
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    (stack.artifacts() / "up.log").write_text(up.stdout + up.stderr)
    try:
        assert up.returncode == 0, f"tests/stack/up.sh failed:\n{(up.stdout + up.stderr)[-3000:]}"
        print(f"\nstack up (build included) in {time.monotonic() - started:.0f}s")
        stack.admin = stack.read_admin_password()
        stack.add_user("olivia", "operator")
        stack.add_user("victor", "viewer")
        yield stack
    finally:
        stack.save_logs()
        _remove_run_containers(stack)
        stack.compose("down", "-v", "--remove-orphans", check=False)


@pytest.fixture(scope="session")
def schedule_tick(stack: Stack) -> ScheduleTick:
    """Waits for a run launched by the daemon for daily_refresh, then stops the schedule.

    Stopped afterwards so that the later tests are not interleaved with a run a minute, and so
    that the persistence test has a state that differs from the code's default (RUNNING).
    """
    schedule = stack.schedule("daily_refresh")
    run: dict | None = None
    error: str | None = None
    try:
        tagged = {"dagster/schedule_name": "daily_refresh"}
        first = poll("a run launched by daily_refresh", lambda: stack.runs(tags=tagged), 150)
        run = stack.wait_run(first[-1]["runId"], 300)
    except AssertionError as e:
        error = str(e)
    finally:
        stopped = stack.graphql(STOP_SCHEDULE, {"id": schedule["scheduleState"]["id"]})
        stack.wait_idle()
    status = stopped["stopRunningSchedule"].get("scheduleState", {}).get("status", str(stopped))
    return ScheduleTick(schedule["scheduleState"]["status"], run, error, status)


@pytest.fixture(scope="session")
def materialized(stack: Stack, schedule_tick: ScheduleTick) -> ObservedRun:
    """'Materialize all' launched through the webserver, as the UI's button does."""
    stack.wait_idle()
    return observe_run(stack, stack.launch_all_assets())
