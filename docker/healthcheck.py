#!/usr/bin/env python3
"""Container healthchecks of the stack, small and cheap (`jaffle-healthcheck grpc|http|daemon`).

Docker runs a check every few seconds, so none imports Dagster unless it must:
- grpc: the gRPC health call `dagster api grpc-health-check` makes, on 127.0.0.1:4000;
- http URL: the URL answers 2xx;
- daemon: the daemon heartbeats and the Docker socket answers. That costs ~1 s of CPU, so a
  pass is remembered for a minute.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DAEMON_PASS = Path("/tmp/daemon-healthy")


def grpc_check(port: int = 4000) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    response = stub.Check(health_pb2.HealthCheckRequest(service="DagsterApi"), timeout=5)
    return response.status == health_pb2.HealthCheckResponse.SERVING


def http_check(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        return 200 <= response.status < 300


def daemon_check() -> bool:
    if DAEMON_PASS.exists() and time.time() - DAEMON_PASS.stat().st_mtime < 60:
        return True
    subprocess.run(["dagster-daemon", "liveness-check"], check=True, capture_output=True)
    import docker

    docker.from_env().ping()
    DAEMON_PASS.touch()
    return True


def main(argv: list[str]) -> int:
    kind, *args = argv or ["?"]
    checks = {
        "grpc": lambda: grpc_check(),
        "http": lambda: http_check(args[0]),
        "daemon": daemon_check,
    }
    if kind not in checks:
        print("usage: jaffle-healthcheck grpc | http URL | daemon", file=sys.stderr)
        return 2
    try:
        return 0 if checks[kind]() else 1
    except Exception as exc:  # a healthcheck reports, it does not raise
        print(f"{kind}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
