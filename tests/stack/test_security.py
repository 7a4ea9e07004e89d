"""Safe by default, tried against the running stack as a user and as an attacker would (issue 6).

Zero-config start, the login and its roles, cross-site routes, run config that tries to reach a
resource, least privilege in every container, run containers included.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.parse

import pytest
import requests
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import connect

from jaffle_stack.compose import ROOT, compose_command, docker
from jaffle_stack.graphql import (
    LAUNCH_MUTATION,
    LOCATION,
    STOP_SCHEDULE,
    WEBSERVER_URL,
    last_sample_day,
)
from jaffle_stack.stack import ObservedRun, Stack, observe_run
from jaffle_stack.wait import poll

# Every test here starts with daily_refresh STOPPED (the session's schedule_tick stops it), so
# that no scheduled run lands between a test's before and after, whatever the test order.
pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("schedule_stopped")]

GRAPHQL = f"{WEBSERVER_URL}/graphql"
JSON = {"Content-Type": "application/json"}
SCHEDULE_SELECTOR = {
    "repositoryLocationName": LOCATION,
    "repositoryName": "__repository__",
    "scheduleName": "daily_refresh",
}
START_SCHEDULE = """
mutation($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
  }
}
"""
WIPE_ASSETS = """
mutation {
  wipeAssets(assetPartitionRanges: [{assetKey: {path: ["order_count_chart"]}}]) {
    __typename
    ... on UnauthorizedError { message }
  }
}
"""
TERMINATE = """
mutation($runId: String!) {
  terminateRun(runId: $runId) { __typename ... on TerminateRunFailure { message } }
}
"""
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PASSWD|_KEY$", re.IGNORECASE)


def post(query: str, variables: dict | None = None, **kwargs) -> requests.Response:
    body = json.dumps({"query": query, "variables": variables or {}})
    headers = {**JSON, **kwargs.pop("headers", {})}
    return requests.post(GRAPHQL, data=body, headers=headers, timeout=30, **kwargs)


def schedule_status(stack: Stack) -> str:
    return stack.schedule("daily_refresh")["scheduleState"]["status"]


def run_count(stack: Stack) -> int:
    return len(stack.runs())


# --- zero-config start ---------------------------------------------------------------------
def test_compose_file_needs_no_env_file(tmp_path) -> None:
    """`docker compose up` on a fresh clone: no variable is required (no password, no GID)."""
    empty = tmp_path / "empty.env"
    empty.write_text("")
    command, env = compose_command(
        {k: v for k, v in os.environ.items() if not k.startswith("POSTGRES")}
    )
    result = subprocess.run(
        [*command, "--env-file", str(empty), "config", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_test_stack_was_started_without_secrets(stack: Stack) -> None:
    assert not [k for k in stack.env if SECRET_NAME.search(k) or k == "DOCKER_GID"], stack.env
    # Read from `docker compose logs init` when the stack first came up (shown that once).
    assert stack.admin is not None
    name, password = stack.admin
    assert name == "admin" and len(password) >= 16


# --- login ---------------------------------------------------------------------------------
def test_nothing_is_served_without_login(stack: Stack) -> None:
    assert post("{ version }").status_code == 401
    ui = requests.get(
        f"{WEBSERVER_URL}/asset-groups",
        headers={"Accept": "text/html"},  # a browser's navigation
        allow_redirects=False,
        timeout=30,
    )
    assert ui.status_code in (302, 303, 307) and "/login" in ui.headers["location"]
    assert post("{ version }", auth=("admin", "wrong-password")).status_code == 401


def test_each_role_gets_what_it_may_do(stack: Stack) -> None:
    viewer, operator = stack.users["viewer"], stack.users["operator"]
    stack.wait_idle()
    runs_before, status_before = run_count(stack), schedule_status(stack)

    # viewer: reads, never writes
    assert post("{ version }", auth=viewer).json()["data"]["version"]
    refused = post(START_SCHEDULE, {"selector": SCHEDULE_SELECTOR}, auth=viewer)
    assert refused.status_code == 403
    assert schedule_status(stack) == status_before
    with pytest.raises(urllib.error.HTTPError) as launch:
        stack.launch_all_assets(auth=viewer)
    assert launch.value.code == 403
    assert run_count(stack) == runs_before

    # operator: schedules on/off and runs, but no wiping
    started = post(START_SCHEDULE, {"selector": SCHEDULE_SELECTOR}, auth=operator).json()
    assert started["data"]["startSchedule"]["scheduleState"]["status"] == "RUNNING", started
    stopped = stack.graphql(
        STOP_SCHEDULE, {"id": stack.schedule("daily_refresh")["scheduleState"]["id"]}, operator
    )
    assert stopped["stopRunningSchedule"]["scheduleState"]["status"] == "STOPPED"
    assert post(WIPE_ASSETS, auth=operator).status_code == 403

    # an admin-only mutation nobody listed: deny by default for the operator too
    unknown = "mutation { setAutoMaterializePaused(paused: true) }"
    assert post(unknown, auth=operator).status_code == 403
    assert post(unknown, auth=stack.admin).status_code == 200
    post("mutation { setAutoMaterializePaused(paused: false) }", auth=stack.admin)


def test_operator_terminates_a_run_without_a_docker_socket_in_the_webserver(
    stack: Stack,
) -> None:
    operator = stack.users["operator"]
    stack.wait_idle()
    run_id = stack.launch_all_assets(auth=operator)
    poll("the run STARTED", lambda: stack.run(run_id)["status"] == "STARTED", 180, 0.5)
    result = stack.graphql(TERMINATE, {"runId": run_id}, operator)
    assert result["terminateRun"]["__typename"] == "TerminateRunSuccess", result
    assert stack.wait_run(run_id, 60)["status"] == "CANCELED"
    poll("the run container gone", lambda: not stack.run_containers(run_id), 60, 1)
    logs = stack.compose("logs", "--no-color", "webserver")
    line = next(
        (ln for ln in logs.splitlines() if "mutation=terminateRun" in ln and run_id in ln), None
    )
    assert line and "user=olivia" in line and "role=operator" in line, logs[-2000:]
    assert "outcome=allowed" in line


def test_refused_mutation_is_audited(stack: Stack) -> None:
    viewer = stack.users["viewer"]
    post(WIPE_ASSETS, auth=viewer)
    logs = stack.compose("logs", "--no-color", "webserver")
    assert re.search(r"audit user=victor role=viewer mutation=wipeAssets outcome=refused", logs)


# --- cross-site routes, even with valid credentials ---------------------------------------
def test_mutation_by_get_is_refused_and_not_executed(stack: Stack) -> None:
    status_before = schedule_status(stack)
    mutation = (
        'mutation { startSchedule(scheduleSelector: {repositoryLocationName: "jaffle_platform", '
        'repositoryName: "__repository__", scheduleName: "daily_refresh"}) { __typename } }'
    )
    url = f"{GRAPHQL}?{urllib.parse.urlencode({'query': mutation})}"
    response = requests.get(url, auth=stack.admin, timeout=30)
    assert response.status_code in (400, 403, 405)
    assert schedule_status(stack) == status_before == "STOPPED"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_post_that_is_not_json_is_refused(stack: Stack, content_type: str) -> None:
    """What a plain HTML form on any web page can send without a CORS pre-check."""
    runs_before = run_count(stack)
    body = json.dumps({"query": START_SCHEDULE, "variables": {"selector": SCHEDULE_SELECTOR}})
    response = requests.post(
        GRAPHQL, data=body, headers={"Content-Type": content_type}, auth=stack.admin, timeout=30
    )
    assert response.status_code == 415
    assert schedule_status(stack) == "STOPPED" and run_count(stack) == runs_before


def test_foreign_origin_is_refused(stack: Stack) -> None:
    response = post(
        START_SCHEDULE,
        {"selector": SCHEDULE_SELECTOR},
        auth=stack.admin,
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert schedule_status(stack) == "STOPPED"


def test_foreign_host_is_refused(stack: Stack) -> None:
    """DNS rebinding: the attacker's name resolving to 127.0.0.1."""
    response = post("{ version }", auth=stack.admin, headers={"Host": "evil.example:3000"})
    assert response.status_code in (400, 421)
    assert "version" not in response.text


def test_websocket_checks_origin_and_login(stack: Stack) -> None:
    url = "ws://127.0.0.1:3000/graphql"
    credentials = requests.auth._basic_auth_str(*stack.admin)  # type: ignore[attr-defined]
    for headers in (
        {"Origin": "https://evil.example", "Authorization": credentials},
        {"Origin": WEBSERVER_URL},
    ):
        with (
            pytest.raises((InvalidStatus, WebSocketException)),
            connect(url, additional_headers=headers, subprotocols=["graphql-ws"]),  # type: ignore[list-item]
        ):
            pass
    with connect(
        url,
        additional_headers={"Origin": WEBSERVER_URL, "Authorization": credentials},
        subprotocols=["graphql-ws"],  # type: ignore[list-item]
    ) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"


# --- run config cannot reach a resource ------------------------------------------------------
def test_run_config_that_changes_the_dbt_executable_is_refused(stack: Stack) -> None:
    operator = stack.users["operator"]
    runs_before = run_count(stack)
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "jobName": "refresh_all",
        },
        "runConfigData": {
            "resources": {
                "dbt": {
                    "config": {
                        "dbt_executable": "python3",
                        "global_config_flags": ["-c", "open('/tmp/pwned', 'w')"],
                    }
                }
            }
        },
    }
    result = stack.graphql(LAUNCH_MUTATION, {"params": params}, operator)["launchRun"]
    assert result["__typename"] == "RunConfigValidationInvalid", result
    assert any("unexpected config entr" in e["message"] for e in result["errors"]), result
    assert run_count(stack) == runs_before


# --- least privilege ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_observed(stack: Stack) -> ObservedRun:
    stack.wait_idle()
    observed = observe_run(stack, stack.launch_all_assets(days=last_sample_day()))
    assert observed.run["status"] == "SUCCESS"
    assert observed.inspected, "the run container was not seen while it ran"
    return observed


def all_containers(stack: Stack, run_observed: ObservedRun) -> dict[str, dict]:
    found = {s: stack.inspect(stack.container(s)) for s in stack.services()}
    found["run container"] = run_observed.inspected[0]
    return found


def test_no_container_has_a_password_in_its_environment(
    stack: Stack, run_observed: ObservedRun
) -> None:
    pg_password = docker(
        "exec", stack.container("user_code"), "cat", "/run/jaffle/secrets/postgres_password"
    ).strip()
    assert len(pg_password) >= 32
    for name, info in all_containers(stack, run_observed).items():
        env = info["Config"]["Env"] or []
        exposed = [
            e
            for e in env
            if "=" in e
            and SECRET_NAME.search(e.split("=", 1)[0])
            and not e.split("=", 1)[0].endswith("_FILE")
            and e.split("=", 1)[1]
        ]
        assert not exposed, f"{name}: {exposed}"
        assert pg_password not in json.dumps(info), f"{name} shows the Postgres password"


def test_every_container_is_hardened(stack: Stack, run_observed: ObservedRun) -> None:
    for name, info in all_containers(stack, run_observed).items():
        host = info["HostConfig"]
        assert "no-new-privileges:true" in (host.get("SecurityOpt") or []), name
        assert host.get("CapDrop") == ["ALL"], name
        assert (host.get("Memory") or 0) > 0, f"{name} has no memory limit"
        assert (host.get("PidsLimit") or 0) > 0, f"{name} has no pids limit"
        log = host["LogConfig"]
        assert log["Type"] == "json-file" and log["Config"].get("max-size"), f"{name}: {log}"


def test_only_the_daemon_and_one_shot_init_mount_the_docker_socket(
    stack: Stack, run_observed: ObservedRun
) -> None:
    containers = all_containers(stack, run_observed)
    with_socket = sorted(
        name
        for name, info in containers.items()
        if any(m["Destination"] == "/var/run/docker.sock" for m in info["Mounts"])
    )
    assert with_socket == ["daemon", "init"]
    # init only pins the user-code image at `up`, then it is gone: nothing keeps the socket.
    assert containers["init"]["State"]["Status"] == "exited"
    assert containers["init"]["State"]["ExitCode"] == 0


def test_user_code_mounts_only_what_it_reads(stack: Stack) -> None:
    mounts = stack.inspect(stack.container("user_code"))["Mounts"]
    assert {m["Destination"]: m["RW"] for m in mounts} == {
        "/run/jaffle/secrets": False,
        "/run/jaffle/alerts": False,
        "/var/lib/jaffle/landing": False,
    }


def test_alert_urls_are_in_no_long_lived_environment(
    stack: Stack, run_observed: ObservedRun
) -> None:
    """The test stack sets JAFFLE_ALERT_URLS (the webhook receiver): only the one-shot init, which
    writes it into the alerts volume, has it; the alert sensors read the file."""
    urls = stack.env["JAFFLE_ALERT_URLS"]
    assert urls
    holders = sorted(
        name
        for name, info in all_containers(stack, run_observed).items()
        if urls in json.dumps(info["Config"]["Env"] or [])
    )
    assert holders == ["init"]
    in_volume = docker("exec", stack.container("user_code"), "cat", "/run/jaffle/alerts/urls")
    assert in_volume.strip() == urls
    mounted = {
        name
        for name, info in all_containers(stack, run_observed).items()
        if any(m["Destination"] == "/run/jaffle/alerts" for m in info["Mounts"])
    }
    assert mounted == {"init", "user_code", "alert_watchdog"}


def test_runs_cannot_read_the_users_or_the_superuser_password(
    run_observed: ObservedRun,
) -> None:
    destinations = {m["Destination"] for m in run_observed.inspected[0]["Mounts"]}
    assert "/var/lib/jaffle/auth" not in destinations
    assert "/run/jaffle/pg" not in destinations


def test_dagster_postgres_role_is_not_a_superuser(stack: Stack) -> None:
    query = "select rolname, rolsuper from pg_roles where rolname = 'dagster'"
    out = stack.compose(
        "exec", "-T", "postgres", "psql", "-U", "postgres", "-tA", "-F", ",", "-c", query
    )
    assert out.strip() == "dagster,f"
    users = stack.compose(
        "exec", "-T", "postgres", "psql", "-U", "postgres", "-tA", "-c",
        "select distinct usename from pg_stat_activity where datname = 'dagster'",
    ).split()  # fmt: skip
    assert users == ["dagster"]
