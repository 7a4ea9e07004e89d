"""The stack toolkit's API client and `python -m jaffle_stack.launch_run` against the real
`jaffle-webserver` (login gate in front of Dagster) on a localhost port: a temporary instance, the
gate tests' tiny code location, runs launched and executed for real."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jaffle_server import users
from jaffle_server.roles import Role
from jaffle_stack.compose import ROOT
from jaffle_stack.graphql import Dagster
from jaffle_stack.wait import poll

LOCATION = "gate_test"
OPERATOR = ("otto", "operator-password-1234")
VIEWER = ("vera", "viewer-password-1234")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a jaffle-webserver serving gate_location.py, with an operator and a viewer."""
    auth_dir = tmp_path_factory.mktemp("auth")
    users.bootstrap(auth_dir, "admin-password-1234")
    users_file = auth_dir / users.USERS_FILE_NAME
    users.add_user(users_file, OPERATOR[0], Role.OPERATOR, OPERATOR[1])
    users.add_user(users_file, VIEWER[0], Role.VIEWER, VIEWER[1])
    port = free_port()
    dagster_home = tmp_path_factory.mktemp("dagster_home")
    # No daemon here to dequeue runs: the webserver launches them itself.
    (dagster_home / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster._core.run_coordinator\n"
        "  class: DefaultRunCoordinator\n"
    )
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "JAFFLE_USERS_FILE": str(users_file),
        "JAFFLE_SESSION_KEY_FILE": str(auth_dir / users.SESSION_KEY_FILE_NAME),
    }
    run_dir = tmp_path_factory.mktemp("webserver")
    workspace = run_dir / "workspace.yaml"
    location = Path(__file__).with_name("gate_location.py")
    workspace.write_text(
        f"load_from:\n  - python_file:\n      relative_path: {location}\n"
        f"      location_name: {LOCATION}\n"
    )
    log = run_dir / "webserver.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("jaffle-webserver")), "-h", "127.0.0.1",
             "-p", str(port), "-w", str(workspace)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert server.poll() is None, f"jaffle-webserver exited:\n{log.read_text()[-3000:]}"
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
                return response.status == 200

        poll("jaffle-webserver healthy", healthy, timeout=120, interval=0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def launch_run(url: str, auth: tuple[str, str] | None) -> subprocess.CompletedProcess[str]:
    """The operator script as the docs run it, from the repository root."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAFFLE_USER", "JAFFLE_PASSWORD")}
    if auth:
        env |= {"JAFFLE_USER": auth[0], "JAFFLE_PASSWORD": auth[1]}
    return subprocess.run(
        [sys.executable, "-m", "jaffle_stack.launch_run", "--url", url, "--location", LOCATION,
         "--timeout", "120"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def operator_launch(webserver: str) -> subprocess.CompletedProcess[str]:
    """launch_run run once as an operator: the module's one run executed for real."""
    return launch_run(webserver, OPERATOR)


def test_launch_run_as_operator_materializes_and_reports_success(
    operator_launch: subprocess.CompletedProcess[str],
) -> None:
    assert operator_launch.returncode == 0, operator_launch.stdout + operator_launch.stderr
    report = json.loads(operator_launch.stdout)
    assert report["status"] == "SUCCESS"
    assert report["seconds"] > 0
    assert report["container_id"] is None  # no Docker here; in the stack, the run's container


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (VIEWER, "(403 Forbidden): this user may not launch runs"),
        (None, "(401 Unauthorized): no valid login: set JAFFLE_USER and JAFFLE_PASSWORD"),
        ((OPERATOR[0], "wrong-password-1234"), "(401 Unauthorized): no valid login"),
    ],
    ids=["viewer", "no-login", "wrong-password"],
)
def test_launch_run_refused_says_why_and_launches_nothing(
    webserver: str, auth: tuple[str, str] | None, expected: str
) -> None:
    api = Dagster(url=webserver, location=LOCATION, auth=OPERATOR)
    runs_before = api.runs()
    result = launch_run(webserver, auth)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"launch_run: {webserver} refused the launch {expected}" in result.stderr
    assert api.runs() == runs_before


def test_client_reads_the_location_schedule_and_the_run(
    webserver: str, operator_launch: subprocess.CompletedProcess[str]
) -> None:
    api = Dagster(url=webserver, location=LOCATION, auth=VIEWER)  # reading needs no more
    entry = api.location_entry()
    assert entry["loadStatus"] == "LOADED"
    nodes = entry["locationOrLoadError"]["repositories"][0]["assetNodes"]
    assert [n["assetKey"]["path"] for n in nodes] == [["hello"]]
    schedule = api.schedule("hello_schedule")
    assert schedule["cronSchedule"] == "0 * * * *"
    assert schedule["scheduleState"]["status"] == "STOPPED"

    run_id = json.loads(operator_launch.stdout)["run_id"]
    run = api.wait_run(run_id, timeout=10)
    assert run["status"] == "SUCCESS"
    assert run["startTime"] <= run["endTime"]
    assert [r["runId"] for r in api.runs(statuses=["SUCCESS"])] == [run_id]
    assert api.runs(statuses=["FAILURE"]) == []
    api.wait_idle(timeout=10)


def test_client_raises_the_refusal_for_a_viewer(webserver: str) -> None:
    viewer = Dagster(url=webserver, location=LOCATION, auth=VIEWER)
    with pytest.raises(urllib.error.HTTPError) as refused:
        viewer.launch_all_assets()
    assert refused.value.code == 403
