"""The services as `docker compose up` leaves them: healthy, non-root, published on localhost."""

from __future__ import annotations

import urllib.request

import pytest

from jaffle_stack.compose import docker
from jaffle_stack.graphql import WEBSERVER_URL
from jaffle_stack.stack import Stack

pytestmark = pytest.mark.stack


def test_every_service_is_running_and_healthy(stack: Stack) -> None:
    health = stack.health()
    assert set(health) == {
        "init", "migrate", "postgres", "user_code", "webserver", "daemon", "reports", "metrics",
        "alert_watchdog",
    }  # fmt: skip
    one_shot = {"init": "completed", "migrate": "completed"}
    assert health == {**dict.fromkeys(health, "healthy"), **one_shot}


@pytest.mark.parametrize(
    "service", ["user_code", "webserver", "daemon", "reports", "metrics", "alert_watchdog"]
)
def test_service_runs_as_non_root(stack: Stack, service: str) -> None:
    # The main process, not `docker exec`'s: the daemon's container starts as root to read the
    # Docker socket's group, and its entrypoint drops to uid 1000 before Dagster starts.
    status = docker("exec", stack.container(service), "cat", "/proc/1/status")
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert uids == ["1000"] * 4, f"{service} runs as uids {uids}"


def test_only_webserver_reports_and_metrics_are_published_on_localhost(stack: Stack) -> None:
    published = {}
    for service in stack.services():
        ports = stack.inspect(stack.container(service))["NetworkSettings"]["Ports"] or {}
        published[service] = {
            port: sorted(b["HostIp"] for b in bindings)
            for port, bindings in ports.items()
            if bindings
        }
    assert published["webserver"] == {"3000/tcp": ["127.0.0.1"]}
    assert published["reports"] == {"8080/tcp": ["127.0.0.1"]}
    assert published["metrics"] == {"9108/tcp": ["127.0.0.1"]}
    for service in ("postgres", "user_code", "daemon", "alert_watchdog"):
        assert published[service] == {}, service
    with urllib.request.urlopen(f"{WEBSERVER_URL}/healthz", timeout=10) as response:
        assert response.status == 200
