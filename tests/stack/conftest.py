"""One compose stack for the whole session: brought up once, torn down with its volumes.

Without a Docker engine the stack tests skip, unless JAFFLE_REQUIRE_STACK=1 (CI) makes that a
failure. The stack uses fixed volume names (docker-compose.yml); the fixture refuses to run when
they exist and belong to another compose project, so it never deletes someone's data.

The tests run in any order: what one test needs from the session (the stack, its users, the
schedule's tick, a materialization, the sample data's row counts) comes from a fixture here, and
a test that disrupts the stack leaves it healthy (`stack_healthy_after`).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from jaffle_platform import settings
from jaffle_stack import alert_hook
from jaffle_stack.compose import ROOT, docker, foreign_resources, write_env_file
from jaffle_stack.graphql import STOP_SCHEDULE
from jaffle_stack.stack import ObservedRun, ScheduleTick, Stack, observe_run
from jaffle_stack.wait import poll

PROJECT = "jaffletest"
ENV_FILE = ROOT / ".stack" / "test.env"
# The test stack's landing folder: never the checkout's own ./landing.
LANDING = ROOT / ".stack" / "landing-test"
# Its backups and warehouse snapshot: never the checkout's ./backups and ./snapshot. Created here
# (as root in CI), so init's hand-over to uid 1000 is exercised too.
BACKUPS = ROOT / ".stack" / "backups-test"
SNAPSHOT = ROOT / ".stack" / "snapshot-test"
ARTIFACTS = ROOT / "tests" / "artifacts"


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
        JAFFLE_BACKUP_DIR=str(BACKUPS),
        # Alerts go to a receiver on the stack's network (the alert_hook fixture).
        JAFFLE_ALERT_URLS=alert_hook.URL,
        JAFFLE_SNAPSHOT_DIR=str(SNAPSHOT),
    )


def _remove_run_containers() -> None:
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
def artifacts() -> Path:
    """tests/artifacts/: compose logs, `up` output, screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def stack(artifacts: Path) -> Iterator[Stack]:
    """The stack, up and healthy, the generated admin signed in, an operator (olivia) and a
    viewer (victor) added."""
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
        _remove_run_containers()
        stack.compose("down", "-v", "--remove-orphans", check=False)
    stack.env = _write_env_file()
    for folder in (LANDING, BACKUPS, SNAPSHOT):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    started = time.monotonic()
    up = subprocess.run(
        [sys.executable, "-m", "jaffle_stack.up", "--env-file", str(ENV_FILE)],
        cwd=ROOT,
        env=stack.process_env(),
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    (artifacts / "up.log").write_text(up.stdout + up.stderr)
    try:
        assert up.returncode == 0, f"jaffle_stack.up failed:\n{(up.stdout + up.stderr)[-3000:]}"
        print(f"\nstack up (build included) in {time.monotonic() - started:.0f}s")
        # API calls go as the generated admin unless a test names another user.
        stack.auth = stack.read_admin_password()
        stack.add_user("olivia", "operator")
        stack.add_user("victor", "viewer")
        yield stack
    finally:
        stack.save_logs(artifacts)
        _remove_run_containers()
        stack.compose("down", "-v", "--remove-orphans", check=False)


@pytest.fixture
def hook(stack: Stack) -> Iterator[alert_hook.AlertHook]:
    """The webhook the stack's alerts go to (JAFFLE_ALERT_URLS), from the stack's own image.
    Only for the test that asks: on the stack's network it would keep `compose down` from
    removing the network."""
    yield alert_hook.start(stack.user_code_image(), "jaffle_platform")
    alert_hook.stop()


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
def schedule_stopped(schedule_tick: ScheduleTick) -> None:
    """daily_refresh has ticked once and is STOPPED: no scheduled run lands between a test's
    before and after, and no restart or outage in a test meets a scheduled run."""
    assert schedule_tick.status_after_stop == "STOPPED"


@pytest.fixture(scope="session")
def materialized(stack: Stack, schedule_tick: ScheduleTick) -> ObservedRun:
    """'Materialize all' launched through the webserver, as the UI's button does."""
    stack.wait_idle()
    return observe_run(stack, stack.launch_all_assets())


@pytest.fixture(scope="session")
def sample_mart_rows() -> dict[str, int]:
    """Rows of the marts once the sample data shipped in the image is loaded: one per customer
    and one per order id of the sample's daily files (a status change repeats an id)."""
    sample = Path(settings.SAMPLE_DATA_DIR)
    with (sample / "raw_customers.csv").open(newline="") as f:
        customers = sum(1 for _ in csv.DictReader(f))
    order_ids: set[str] = set()
    for day in sorted((sample / "raw_orders").glob("*.csv")):
        with day.open(newline="") as f:
            order_ids.update(row["id"] for row in csv.DictReader(f))
    return {"customers": customers, "orders": len(order_ids)}


# Each phase's report of a test ("setup", "call", "teardown"), kept on the test item.
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keeps each phase's report, for `stack_healthy_after`."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture
def stack_healthy_after(request: pytest.FixtureRequest, stack: Stack) -> Iterator[None]:
    """For tests that stop, restart or take down services: when such a test fails half-way, the
    services it stopped are started again, so the tests after it meet a healthy stack. (A test
    that passes has waited for every service to be healthy itself.)"""
    yield
    call = request.node.stash.get(_REPORTS, {}).get("call")
    if call is not None and call.failed:
        stack.compose("up", "-d", "--no-build")
        stack.wait_healthy()
