"""The webserver's /healthz says "waiting" until its code location answers, then "ok".

Compose starts the webserver beside the code server rather than after it (a faster cold `up`),
so healthy must still mean "the UI shows the code". Here the code server is a real
`dagster api grpc` process, started after the webserver's workspace, as in the stack.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from dagster import instance_for_test
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import GrpcServerTarget
from starlette.applications import Starlette
from starlette.testclient import TestClient

from jaffle_server.gate import GateSettings, create_gate
from jaffle_server.user_store import bootstrap, session_key_file, users_file
from jaffle_server.webserver import unreachable_locations

LOCATION = Path(__file__).with_name("gate_location.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz_waits_for_the_code_server_then_serves(tmp_path: Path) -> None:
    port = free_port()
    bootstrap(tmp_path, admin_password="not-used-here-1234")
    settings = GateSettings(
        allowed_hosts=frozenset({"testserver"}),
        session_hours=1,
        cookie_secure=False,
        users_file=users_file(tmp_path),
        session_key_file=session_key_file(tmp_path),
    )
    target = GrpcServerTarget(host="127.0.0.1", port=port, socket=None, location_name="jaffle")
    with (
        instance_for_test() as instance,
        WorkspaceProcessContext(instance, target) as process,
    ):
        gate = create_gate(Starlette(), settings, ready=lambda: unreachable_locations(process))
        client = TestClient(gate)
        waiting = client.get("/healthz")
        assert (waiting.status_code, waiting.text) == (503, "waiting: jaffle")

        server = subprocess.Popen(
            [sys.executable, "-m", "dagster", "api", "grpc", "--port", str(port),
             "--host", "127.0.0.1", "--python-file", str(LOCATION)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while (response := client.get("/healthz")).status_code != 200:
                assert time.monotonic() < deadline, f"still {response.text} after 60 s"
                time.sleep(0.5)
            assert response.text == "ok"
            entry = process.get_current_workspace().code_location_entries["jaffle"]
            assert entry.load_error is None, "the location loaded, not merely answered"
        finally:
            server.terminate()
            server.wait(timeout=30)
