#!/usr/bin/env python3
"""Container healthchecks of the stack, small and cheap (`jaffle-healthcheck grpc|http|daemon`).

Docker runs a check every few seconds, so none imports Dagster unless it must:
- grpc: the gRPC health call `dagster api grpc-health-check` makes, on 127.0.0.1:4000;
- http URL: the URL answers 2xx;
- file PATH MAX_AGE: PATH was modified within MAX_AGE seconds (the alert watchdog's heartbeat);
- daemon: the scheduler, sensor and run-queue daemons heartbeated within the last minute (read
  from Dagster's `daemon_heartbeats` table with psycopg2, ~50 ms, where `dagster-daemon
  liveness-check` imports Dagster for ~1 s of CPU and accepts heartbeats up to 30 minutes old),
  and the Docker socket answers.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request

# The daemons without which nothing happens: schedules, sensors (the landing folder, alerts) and
# the run queue. Dagster writes each one's heartbeat every few seconds.
REQUIRED_DAEMONS = {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR"}
HEARTBEAT_MAX_AGE_SECONDS = 60


def grpc_check(port: int = 4000) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    response = stub.Check(health_pb2.HealthCheckRequest(service="DagsterApi"), timeout=5)
    return response.status == health_pb2.HealthCheckResponse.SERVING


def http_check(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        return 200 <= response.status < 300


def file_check(path: str, max_age_seconds: str) -> bool:
    """A process that touches `path` as it works did so within the last `max_age_seconds`."""
    return time.time() - os.path.getmtime(path) <= float(max_age_seconds)


def daemon_check() -> bool:
    import psycopg2

    env = os.environ
    connection = psycopg2.connect(
        host=env["DAGSTER_POSTGRES_HOST"],
        user=env["DAGSTER_POSTGRES_USER"],
        password=env["DAGSTER_POSTGRES_PASSWORD"],
        dbname=env["DAGSTER_POSTGRES_DB"],
        connect_timeout=5,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("select daemon_type, body from daemon_heartbeats")
            beats = {kind: json.loads(body)["timestamp"] for kind, body in cursor.fetchall()}
    finally:
        connection.close()
    stale = {
        d for d in REQUIRED_DAEMONS if time.time() - beats.get(d, 0) > HEARTBEAT_MAX_AGE_SECONDS
    }
    if stale:
        print(f"daemon: no recent heartbeat from {sorted(stale)}", file=sys.stderr)
        return False
    import docker

    docker.from_env().ping()
    return True


def main(argv: list[str]) -> int:
    kind, *args = argv or ["?"]
    checks = {
        "grpc": lambda: grpc_check(),
        "http": lambda: http_check(args[0]),
        "daemon": daemon_check,
        "file": lambda: file_check(*args),
    }
    if kind not in checks:
        usage = "usage: jaffle-healthcheck grpc | http URL | daemon | file PATH MAX_AGE"
        print(usage, file=sys.stderr)
        return 2
    try:
        return 0 if checks[kind]() else 1
    except Exception as exc:  # a healthcheck reports, it does not raise
        print(f"{kind}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
