"""The login gate in front of Dagster's real webserver app (no mocks): a temporary instance, a tiny
code location loaded in-process, and Starlette's TestClient over HTTP and WebSocket."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, instance_for_test
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import InstigatorStatus
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from itsdangerous import TimestampSigner
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from jaffle_server import users
from jaffle_server.auth import Sessions
from jaffle_server.context import USER_SCOPE_KEY, create_dagster_app
from jaffle_server.gate import COOKIE_NAME, Gate, GateSettings, create_gate
from jaffle_server.roles import Role

LOCATION = "gate_test"
BASE = "http://localhost:3000"
WS_URL = "ws://localhost:3000/graphql"
ORIGIN = {"origin": BASE}
PASSWORDS = {
    "admin": "admin-password-1234",
    "vera": "viewer-password-1234",
    "otto": "operator-password-1234",
}
VIEWER = ("vera", PASSWORDS["vera"])
OPERATOR = ("otto", PASSWORDS["otto"])
ADMIN = ("admin", PASSWORDS["admin"])

JOB = {
    "repositoryLocationName": LOCATION,
    "repositoryName": "__repository__",
    "jobName": "hello_job",
}
SCHEDULE = {
    "repositoryLocationName": LOCATION,
    "repositoryName": "__repository__",
    "scheduleName": "hello_schedule",
}
LAUNCH = """mutation Launch($p: ExecutionParams!) {
  launchRun(executionParams: $p) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  }
}"""
START_SCHEDULE = """mutation Start($s: ScheduleSelector!) {
  startSchedule(scheduleSelector: $s) {
    __typename ... on ScheduleStateResult { scheduleState { id status } }
  }
}"""
STOP_SCHEDULE = """mutation Stop($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename ... on ScheduleStateResult { scheduleState { id status } }
  }
}"""
TERMINATE = """mutation T($runId: String!) { terminateRun(runId: $runId) { __typename } }"""
DELETE_RUN = """mutation D($runId: String!) { deleteRun(runId: $runId) { __typename } }"""
WIPE = """mutation { wipeAssets(assetPartitionRanges: [{assetKey: {path: ["hello"]}}]) {
  __typename } }"""
SET_LIMIT = """mutation { setConcurrencyLimit(concurrencyKey: "db", limit: 3) }"""
PERMISSIONS = "{ permissions { permission value } }"


@dataclass
class Stack:
    gate: Gate
    dagster_app: Any
    instance: DagsterInstance
    users_file: Path
    key: bytes

    def client(self, base_url: str = BASE) -> TestClient:
        return TestClient(self.gate, base_url=base_url, follow_redirects=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    auth_dir = tmp_path_factory.mktemp("auth")
    assert users.bootstrap(auth_dir, PASSWORDS["admin"]) is None
    users_file = auth_dir / users.USERS_FILE_NAME
    users.add_user(users_file, "vera", Role.VIEWER, PASSWORDS["vera"])
    users.add_user(users_file, "otto", Role.OPERATOR, PASSWORDS["otto"])
    settings = GateSettings(
        allowed_hosts=frozenset({"localhost", "127.0.0.1"}),
        session_hours=12,
        cookie_secure=False,
        users_file=users_file,
        session_key_file=auth_dir / users.SESSION_KEY_FILE_NAME,
    )
    # Runs are queued and never picked up (no daemon): launching is observable, nothing executes.
    coordinator = {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}
    location_file = Path(__file__).with_name("gate_location.py")
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(python_file=str(location_file), attribute="defs"),
        location_name=LOCATION,
    )
    with (
        instance_for_test(overrides={"run_coordinator": coordinator}) as instance,
        WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as process,
    ):
        app = create_dagster_app(process)
        yield Stack(
            gate=create_gate(app, settings),
            dagster_app=app,
            instance=instance,
            users_file=users_file,
            key=users.read_session_key(settings.session_key_file),
        )


def gql(
    client: TestClient,
    query: str,
    variables: dict[str, Any] | None = None,
    auth: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    return client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, auth=auth, headers=headers
    )


def launch(client: TestClient, auth: tuple[str, str]) -> Any:
    return gql(client, LAUNCH, {"p": {"selector": JOB}}, auth=auth)


def schedule_status(instance: DagsterInstance) -> InstigatorStatus | None:
    states = instance.all_instigator_state()
    return next((s.status for s in states if s.name == "hello_schedule"), None)


def permissions(client: TestClient, auth: tuple[str, str]) -> dict[str, bool]:
    response = gql(client, PERMISSIONS, auth=auth)
    assert response.status_code == 200, response.text
    return {p["permission"]: p["value"] for p in response.json()["data"]["permissions"]}


def assert_forbidden(response: Any) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# --- reachability ---------------------------------------------------------------------------------


def test_healthz_open_everything_else_needs_login(stack: Stack) -> None:
    client = stack.client()
    assert client.get("/healthz").text == "ok"
    assert stack.client("http://dagster-webserver:3000").get("/healthz").status_code == 200
    for path in ("/server_info", "/runs", "/graphql", "/logs/x/y.out", "/download_debug/x"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith('Basic realm="jaffle"')


def test_browser_navigation_redirects_to_login(stack: Stack) -> None:
    response = stack.client().get("/runs?view=list", headers={"accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fruns%3Fview%3Dlist"


def test_foreign_host_refused(stack: Stack) -> None:
    response = gql(stack.client("http://evil.example"), PERMISSIONS, auth=ADMIN)
    assert response.status_code == 400
    response = stack.client().post(
        "/graphql", json={"query": PERMISSIONS}, auth=ADMIN, headers={"host": "evil.example:3000"}
    )
    assert response.status_code == 400


# --- HTTP Basic and roles -------------------------------------------------------------------------


def test_basic_auth_and_bad_password(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jaffle.audit")
    client = stack.client()
    assert gql(client, "{ version }", auth=ADMIN).status_code == 200
    assert gql(client, "{ version }", auth=("admin", "wrong-password-123")).status_code == 401
    assert gql(client, "{ version }", auth=("nobody", "wrong-password-123")).status_code == 401
    assert "login user=admin method=basic outcome=failed" in caplog.text
    assert "login user=admin method=basic outcome=success" in caplog.text
    assert "wrong-password-123" not in caplog.text


def test_permissions_follow_the_role(stack: Stack) -> None:
    """Layer (a): what the UI reads to grey out buttons."""
    client = stack.client()
    viewer, operator, admin = (permissions(client, who) for who in (VIEWER, OPERATOR, ADMIN))
    assert not any(viewer.values())
    assert {k for k, v in operator.items() if v} == {
        "launch_pipeline_execution",
        "launch_pipeline_reexecution",
        "terminate_pipeline_execution",
        "launch_partition_backfill",
        "cancel_partition_backfill",
        "start_schedule",
        "stop_running_schedule",
        "edit_sensor",
    }
    assert admin["wipe_assets"] and admin["edit_concurrency_limit"] and admin["delete_pipeline_run"]


def test_viewer_cannot_launch_or_stop_a_schedule(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jaffle.audit")
    client = stack.client()
    runs_before = stack.instance.get_runs_count()
    assert_forbidden(launch(client, VIEWER))
    assert stack.instance.get_runs_count() == runs_before
    assert "audit user=vera role=viewer mutation=launchRun outcome=refused run_id=-" in caplog.text

    started = gql(client, START_SCHEDULE, {"s": SCHEDULE}, auth=OPERATOR).json()
    state_id = started["data"]["startSchedule"]["scheduleState"]["id"]
    assert_forbidden(gql(client, STOP_SCHEDULE, {"id": state_id}, auth=VIEWER))
    assert schedule_status(stack.instance) == InstigatorStatus.RUNNING
    gql(client, STOP_SCHEDULE, {"id": state_id}, auth=OPERATOR)


def test_operator_launches_terminates_and_toggles_schedules(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jaffle.audit")
    client = stack.client()
    response = launch(client, OPERATOR)
    assert response.status_code == 200, response.text
    run_id = response.json()["data"]["launchRun"]["run"]["runId"]
    assert stack.instance.get_run_by_id(run_id) is not None
    audit = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit ")]
    assert audit == [
        f"audit user=otto role=operator mutation=launchRun outcome=allowed run_id={run_id}"
    ]

    started = gql(client, START_SCHEDULE, {"s": SCHEDULE}, auth=OPERATOR).json()
    assert started["data"]["startSchedule"]["scheduleState"]["status"] == "RUNNING"
    assert schedule_status(stack.instance) == InstigatorStatus.RUNNING
    state_id = started["data"]["startSchedule"]["scheduleState"]["id"]
    stopped = gql(client, STOP_SCHEDULE, {"id": state_id}, auth=OPERATOR).json()
    assert stopped["data"]["stopRunningSchedule"]["scheduleState"]["status"] == "STOPPED"
    assert schedule_status(stack.instance) == InstigatorStatus.STOPPED

    # The UI's own launch mutation names the run `run { id }`.
    ui_launch = """mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
      launchPipelineExecution(executionParams: $executionParams) {
        ... on LaunchRunSuccess { run { id pipelineName } }
      }
    }"""
    ui_response = gql(client, ui_launch, {"executionParams": {"selector": JOB}}, auth=OPERATOR)
    ui_run_id = ui_response.json()["data"]["launchPipelineExecution"]["run"]["id"]
    assert (
        "audit user=otto role=operator mutation=launchPipelineExecution outcome=allowed "
        f"run_id={ui_run_id}"
    ) in caplog.text

    terminated = gql(client, TERMINATE, {"runId": run_id}, auth=OPERATOR)
    assert terminated.json()["data"]["terminateRun"]["__typename"] == "TerminateRunSuccess"
    assert f"mutation=terminateRun outcome=allowed run_id={run_id}" in caplog.text


def test_operator_cannot_wipe_delete_or_set_limits(stack: Stack) -> None:
    client = stack.client()
    run_id = launch(client, ADMIN).json()["data"]["launchRun"]["run"]["runId"]
    assert_forbidden(gql(client, WIPE, auth=OPERATOR))
    assert_forbidden(gql(client, DELETE_RUN, {"runId": run_id}, auth=OPERATOR))
    assert_forbidden(gql(client, SET_LIMIT, auth=OPERATOR))
    assert stack.instance.get_run_by_id(run_id) is not None
    assert "db" not in stack.instance.event_log_storage.get_concurrency_keys()
    # Hidden behind a fragment and an alias, a mutation is still seen.
    sneaky = "mutation { ...F } fragment F on Mutation { x: deleteRun(runId: $id) { __typename } }"
    assert_forbidden(gql(client, sneaky, auth=OPERATOR))


def test_admin_can_do_everything(stack: Stack) -> None:
    client = stack.client()
    run_id = launch(client, ADMIN).json()["data"]["launchRun"]["run"]["runId"]
    deleted = gql(client, DELETE_RUN, {"runId": run_id}, auth=ADMIN).json()
    assert deleted["data"]["deleteRun"]["__typename"] == "DeletePipelineRunSuccess"
    assert stack.instance.get_run_by_id(run_id) is None
    assert gql(client, SET_LIMIT, auth=ADMIN).json()["data"]["setConcurrencyLimit"] is True
    assert "db" in stack.instance.event_log_storage.get_concurrency_keys()
    wiped = gql(client, WIPE, auth=ADMIN).json()
    assert wiped["data"]["wipeAssets"]["__typename"] == "AssetWipeSuccess"


def test_unknown_mutation_needs_admin(stack: Stack) -> None:
    client = stack.client()
    future = "mutation { someFutureMutation }"
    assert_forbidden(gql(client, future, auth=OPERATOR))
    assert_forbidden(
        gql(client, "mutation { setAutoMaterializePaused(paused: true) }", auth=OPERATOR)
    )
    # Admin passes the gate; Dagster's own validation then rejects the unknown field.
    assert gql(client, future, auth=ADMIN).status_code == 400


def test_dagster_resolvers_refuse_on_their_own(stack: Stack) -> None:
    """Layer (b) behind layer (a): Dagster's app alone, with the role on the connection."""
    user = users.load_users(stack.users_file)["otto"]

    async def as_operator(scope: Scope, receive: Receive, send: Send) -> None:
        scope[USER_SCOPE_KEY] = user
        await stack.dagster_app(scope, receive, send)

    client = TestClient(as_operator, base_url=BASE)
    response = gql(client, WIPE)
    assert response.json()["data"]["wipeAssets"]["__typename"] == "UnauthorizedError"


def test_report_endpoints_need_admin(stack: Stack) -> None:
    client = stack.client()
    response = client.post("/report_asset_materialization/hello", auth=OPERATOR)
    assert_forbidden(response)
    assert client.post("/runs", auth=ADMIN).status_code == 405


# --- login page and sessions ----------------------------------------------------------------------


def login(client: TestClient, name: str, password: str, next_path: str = "/") -> Any:
    return client.post(
        "/login",
        data={"username": name, "password": password, "next": next_path},
        headers=ORIGIN,
    )


def test_login_page_cookie_then_graphql(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jaffle.audit")
    client = stack.client()
    page = client.get("/login?next=/runs")
    assert page.status_code == 200
    for needle in ('name="username"', 'name="password"', 'type="submit"', 'value="/runs"'):
        assert needle in page.text

    refused = login(client, "otto", "not-his-password")
    assert refused.status_code == 401 and COOKIE_NAME not in client.cookies
    response = login(client, "otto", PASSWORDS["otto"], "/runs")
    assert response.status_code == 303 and response.headers["location"] == "/runs"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    assert "Max-Age=43200" in cookie
    assert "login user=otto method=form outcome=success" in caplog.text
    assert "login user=otto method=form outcome=failed" in caplog.text

    assert permissions(client, auth=None)["launch_pipeline_execution"] is True  # type: ignore[arg-type]
    assert client.get("/login").headers["location"] == "/"  # already signed in
    assert launch(client, None).status_code == 200  # type: ignore[arg-type]


def test_login_next_stays_on_site(stack: Stack) -> None:
    for evil in ("//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:1"):
        response = login(stack.client(), "vera", PASSWORDS["vera"], evil)
        assert response.headers["location"] == "/", evil


def test_cookie_secure_over_https(stack: Stack) -> None:
    response = login(stack.client("https://localhost"), "vera", PASSWORDS["vera"])
    assert "Secure" in response.headers["set-cookie"]


def test_expired_and_tampered_sessions_refused(stack: Stack) -> None:
    user = users.load_users(stack.users_file)["vera"]

    class Yesterday(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 13 * 3600

    expired = Sessions(stack.key, 12 * 3600, signer=Yesterday).issue(user)
    fresh = Sessions(stack.key, 12 * 3600).issue(user)
    tampered = fresh[:-2] + ("AA" if not fresh.endswith("AA") else "BB")
    forged = Sessions(b"k" * 64, 12 * 3600).issue(user)
    for token, status in ((fresh, 200), (expired, 401), (tampered, 401), (forged, 401)):
        client = stack.client()
        client.cookies.set(COOKIE_NAME, token)
        assert gql(client, "{ version }").status_code == status


def test_session_ends_when_user_removed_or_changed(stack: Stack) -> None:
    users.add_user(stack.users_file, "tess", Role.OPERATOR, "temporary-password-1")
    client = stack.client()
    login(client, "tess", "temporary-password-1")
    assert gql(client, "{ version }").status_code == 200
    users.add_user(stack.users_file, "tess", Role.VIEWER, "temporary-password-1", update=True)
    assert gql(client, "{ version }").status_code == 401
    login(client, "tess", "temporary-password-1")
    assert gql(client, "{ version }").status_code == 200
    users.remove_user(stack.users_file, "tess")
    assert gql(client, "{ version }").status_code == 401
    assert gql(client, "{ version }", auth=("tess", "temporary-password-1")).status_code == 401


def test_logout_clears_the_cookie(stack: Stack) -> None:
    client = stack.client()
    login(client, "vera", PASSWORDS["vera"])
    assert gql(client, "{ version }").status_code == 200
    assert 'name="username"' not in client.get("/logout").text
    response = client.post("/logout", headers=ORIGIN)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert re.search(rf'{COOKIE_NAME}="?"?;.*Max-Age=0', response.headers["set-cookie"])
    assert COOKIE_NAME not in client.cookies
    assert gql(client, "{ version }").status_code == 401


# --- cross-site routes ----------------------------------------------------------------------------


def test_mutation_by_get_refused_and_not_executed(stack: Stack) -> None:
    client = stack.client()
    runs_before = stack.instance.get_runs_count()
    status_before = schedule_status(stack.instance)
    requests = (
        (LAUNCH, {"p": {"selector": JOB}}),
        (START_SCHEDULE, {"s": SCHEDULE}),
        (WIPE, {}),
    )
    for query, variables in requests:
        for accept in ("application/json", "text/html"):
            response = client.get(
                "/graphql",
                params={"query": query, "variables": json.dumps(variables)},
                auth=ADMIN,
                headers={"accept": accept},
            )
            assert response.status_code == 405
    assert stack.instance.get_runs_count() == runs_before
    assert schedule_status(stack.instance) == status_before


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "text/plain; application/json"],
)
def test_non_json_post_refused_and_not_executed(stack: Stack, content_type: str) -> None:
    client = stack.client()
    runs_before = stack.instance.get_runs_count()
    launch_doc = '{"query": "mutation { setConcurrencyLimit(concurrencyKey: \\"x\\", limit: 1) }"}'
    response = client.post(
        "/graphql",
        params={"query": 'mutation { setConcurrencyLimit(concurrencyKey: "y", limit: 1) }'},
        content=launch_doc,
        auth=ADMIN,
        headers={"content-type": content_type},
    )
    assert response.status_code == 415
    assert {"x", "y"}.isdisjoint(stack.instance.event_log_storage.get_concurrency_keys())
    assert stack.instance.get_runs_count() == runs_before


def test_foreign_origin_and_cross_site_fetch_refused(stack: Stack) -> None:
    client = stack.client()
    runs_before = stack.instance.get_runs_count()
    for headers in (
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
    ):
        response = gql(client, LAUNCH, {"p": {"selector": JOB}}, auth=ADMIN, headers=headers)
        assert response.status_code == 403, headers
    assert stack.instance.get_runs_count() == runs_before
    assert gql(client, "{ version }", auth=ADMIN, headers=ORIGIN).status_code == 200
    login_from_elsewhere = client.post(
        "/login",
        data={"username": "vera", "password": PASSWORDS["vera"]},
        headers={"origin": "https://evil.example"},
    )
    assert login_from_elsewhere.status_code == 403


# --- WebSocket ------------------------------------------------------------------------------------


def ws_headers(auth: tuple[str, str] | None, origin: str | None = BASE) -> dict[str, str]:
    import base64

    headers: dict[str, str] = {}
    if origin is not None:
        headers["origin"] = origin
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["authorization"] = f"Basic {token}"
    return headers


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(ws_headers(ADMIN, "https://evil.example"), id="foreign-origin"),
        pytest.param(ws_headers(ADMIN, None), id="no-origin"),
        pytest.param(ws_headers(None), id="no-auth"),
        pytest.param(ws_headers(("admin", "wrong-password-123")), id="bad-password"),
    ],
)
def test_websocket_refused_before_accept(stack: Stack, headers: dict[str, str]) -> None:
    good = ws_headers(ADMIN)
    with stack.client().websocket_connect(WS_URL, headers=good, subprotocols=["graphql-ws"]) as ws:
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json()["type"] == "connection_ack"
    with (
        pytest.raises(WebSocketDisconnect),
        stack.client().websocket_connect(WS_URL, headers=headers, subprotocols=["graphql-ws"]),
    ):
        pass


def test_websocket_subscriptions_only(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jaffle.audit")
    client = stack.client()
    run_id = launch(client, ADMIN).json()["data"]["launchRun"]["run"]["runId"]
    login(client, "vera", PASSWORDS["vera"])
    logs = "subscription L($id: ID!) { pipelineRunLogs(runId: $id) { __typename } }"
    with client.websocket_connect(WS_URL, headers=ORIGIN, subprotocols=["graphql-ws"]) as ws:
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json(
            {"type": "start", "id": "1", "payload": {"query": logs, "variables": {"id": run_id}}}
        )
        message = ws.receive_json()
        assert message["type"] == "data", message
        assert message["payload"]["data"]["pipelineRunLogs"]["__typename"] == (
            "PipelineRunLogsSubscriptionSuccess"
        )
        ws.send_json({"type": "stop", "id": "1"})
        launch_payload = {"query": LAUNCH, "variables": {"p": {"selector": JOB}}}
        ws.send_json({"type": "start", "id": "2", "payload": launch_payload})
        with pytest.raises(WebSocketDisconnect):
            while True:  # the socket may still deliver subscription 1's tail before closing
                ws.receive_json()
    assert "audit user=vera role=viewer mutation=launchRun outcome=refused" in caplog.text
