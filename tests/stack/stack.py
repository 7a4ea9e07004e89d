"""The compose stack under test: compose and docker commands, health, GraphQL, the warehouse."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import secrets
import subprocess
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from jaffle_platform import settings
from tests.stack import launch_run

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "stack"
ARTIFACTS = ROOT / "tests" / "artifacts"
LOCATION = "jaffle_platform"
WEBSERVER_URL = "http://127.0.0.1:3000"
REPORTS_URL = "http://127.0.0.1:8080"
# Services that run once and exit (0) at each `up`, before the others start.
ONE_SHOT = {"init"}
# Statuses of a run that is not finished yet.
IN_FLIGHT = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]

T = TypeVar("T")


def poll(what: str, check: Callable[[], T | None], timeout: float, interval: float = 2.0) -> T:
    """Call `check` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (OSError, RuntimeError, urllib.error.URLError, subprocess.CalledProcessError) as e:
            last_error = e
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}"
                + (f" (last error: {last_error})" if last_error else "")
            )
        time.sleep(interval)


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise subprocess.CalledProcessError(
            result.returncode, result.args, result.stdout, result.stderr
        )
    return result.stdout


def compose_file_names() -> tuple[list[str], list[str]]:
    """The fixed volume and network names docker-compose.yml gives (`name:`)."""
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    volumes = [v["name"] for v in (config.get("volumes") or {}).values() if v and "name" in v]
    networks = [n["name"] for n in (config.get("networks") or {}).values() if n and "name" in n]
    return volumes, networks


def write_env_file(path: Path, project: str, **extra: str) -> dict[str, str]:
    """A compose env file for a throwaway project: stand-in base images, nothing else required.

    No secret and no Docker group: the stack generates and finds those itself at first start.
    """
    env = {
        "COMPOSE_PROJECT_NAME": project,
        "PYTHON_BASE_IMAGE": os.environ.get(
            "STANDIN_PYTHON_IMAGE", "jaffle-standin/python:3.11-bookworm"
        ),
        "POSTGRES_IMAGE": os.environ.get("STANDIN_POSTGRES_IMAGE", "jaffle-standin/postgres:15"),
        **extra,
    }
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return env


def foreign_resources(project: str) -> list[str]:
    """The stack's fixed-name volumes and network that exist and another compose project owns."""
    volumes, networks = compose_file_names()
    foreign = []
    for kind, names in (("volume", volumes), ("network", networks)):
        for name in names:
            # A missing name prints `[]` (or nothing, with older clients) and exits non-zero.
            found = json.loads(docker(kind, "inspect", name, check=False).strip() or "[]")
            if not found:
                continue
            owner = (found[0].get("Labels") or {}).get("com.docker.compose.project")
            if owner != project:
                foreign.append(f"{kind} {name} (compose project: {owner or 'none'})")
    return foreign


def csv_rows(name: str) -> int:
    """Data rows of a sample CSV (the stack loads the sample data shipped in the image)."""
    with (Path(settings.SAMPLE_DATA_DIR) / f"{name}.csv").open(newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


@dataclass
class Stack:
    """One compose project, reached through tests/stack/compose.sh with its own env file."""

    project: str
    env_file: Path
    env: dict[str, str] = field(default_factory=dict)
    # (user, password) of an admin, read from the init service's first-start banner.
    admin: tuple[str, str] | None = None
    users: dict[str, tuple[str, str]] = field(default_factory=dict)

    # --- compose and containers ---------------------------------------------------------------
    def process_env(self) -> dict[str, str]:
        # The env file's values win over whatever the caller's shell exports.
        return {**os.environ, **self.env, "COMPOSE_PROJECT_NAME": self.project}

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        return self.compose_bytes(*args, timeout=timeout, check=check).decode()

    def compose_bytes(
        self, *args: str, stdin: bytes | None = None, timeout: float = 600, check: bool = True
    ) -> bytes:
        """compose with binary stdin and stdout (pg_dump's custom format is not text)."""
        result = subprocess.run(
            ["bash", str(HERE / "compose.sh"), "--env-file", str(self.env_file), *args],
            cwd=ROOT,
            env=self.process_env(),
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"compose {' '.join(args)} exited {result.returncode}:\n"
                + result.stderr.decode(errors="replace")[-3000:]
            )
        return result.stdout

    def artifacts(self) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        return ARTIFACTS

    def save_logs(self, suffix: str = "") -> None:
        """Every service's logs to tests/artifacts/compose-<service><suffix>.log."""
        for service in self.services():
            logs = self.compose("logs", "--no-color", "--timestamps", service, check=False)
            (self.artifacts() / f"compose-{service}{suffix}.log").write_text(logs)

    def services(self) -> list[str]:
        return self.compose("config", "--services").split()

    def container(self, service: str) -> str:
        """Id of the service's container (running or not)."""
        ids = self.compose("ps", "-q", service).split()
        assert len(ids) == 1, f"expected one {service} container, found {ids}"
        return ids[0]

    def inspect(self, container: str) -> dict[str, Any]:
        return json.loads(docker("inspect", container))[0]

    def health(self) -> dict[str, str]:
        """Service -> health status ('healthy', 'starting', 'unhealthy', or the state).

        A one-shot service that exited 0 is 'completed'."""
        out: dict[str, str] = {}
        for service in self.services():
            ids = self.compose("ps", "-q", service).split()
            if not ids:
                out[service] = "missing"
                continue
            state = self.inspect(ids[0])["State"]
            if service in ONE_SHOT and state["Status"] == "exited" and state["ExitCode"] == 0:
                out[service] = "completed"
                continue
            out[service] = (state.get("Health") or {}).get("Status") or state["Status"]
        return out

    def wait_healthy(self, timeout: float = 240) -> dict[str, str]:
        def all_healthy() -> dict[str, str] | None:
            health = self.health()
            return health if set(health.values()) <= {"healthy", "completed"} else None

        return poll("every service healthy", all_healthy, timeout, interval=2)

    def run_containers(self, run_id: str | None = None) -> list[str]:
        """Run containers (DockerRunLauncher labels them dagster/run_id) of this stack."""
        label = f"dagster/run_id={run_id}" if run_id else "dagster/run_id"
        return docker("ps", "-aq", "--filter", f"label={label}").split()

    def user_code_image(self) -> str:
        return self.inspect(self.container("user_code"))["Config"]["Image"]

    # --- users --------------------------------------------------------------------------------
    def read_admin_password(self) -> tuple[str, str]:
        """The generated first admin, as `docker compose logs init` shows it to a newcomer."""
        logs = self.compose("logs", "--no-color", "init")
        # Each line is prefixed `init_1  | ` (v1) or `init-1  | ` (v2): keep what follows.
        lines = [line.split("|", 1)[-1].strip() for line in logs.splitlines()]
        for i, line in enumerate(lines):
            match = re.search(r"first user is '(\w+)' with the generated password", line)
            if match:
                password = next(x for x in lines[i + 1 :] if x)
                return match.group(1), password
        raise AssertionError(f"no generated admin password in the init logs:\n{logs[-2000:]}")

    def add_user(self, name: str, role: str) -> tuple[str, str]:
        """A user made with the README's command; its password goes in on stdin."""
        password = secrets.token_urlsafe(18)
        self.compose_bytes(
            "exec", "-T", "webserver", "jaffle-users", "add", name, "--role", role,
            stdin=(password + "\n").encode(),
        )  # fmt: skip
        self.users[role] = (name, password)
        return name, password

    # --- GraphQL ----------------------------------------------------------------------------
    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, auth: launch_run.Auth = None
    ) -> dict[str, Any]:
        return launch_run.graphql(WEBSERVER_URL, query, variables, auth or self.admin)

    def launch_all_assets(self, auth: launch_run.Auth = None) -> str:
        return launch_run.launch_all_assets(WEBSERVER_URL, LOCATION, auth or self.admin)

    def run(self, run_id: str) -> dict[str, Any]:
        run = self.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        run["tagmap"] = {t["key"]: t["value"] for t in run["tags"]}
        return run

    def wait_run(self, run_id: str, timeout: float = 300, interval: float = 2.0) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            run = self.run(run_id)
            return run if run["status"] not in IN_FLIGHT else None

        return poll(f"run {run_id} to finish", finished, timeout, interval)

    def runs(
        self, tags: dict[str, str] | None = None, statuses: list[str] | None = None
    ) -> list[dict[str, Any]]:
        run_filter: dict[str, Any] = {}
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        if statuses:
            run_filter["statuses"] = statuses
        result = self.graphql(RUNS_QUERY, {"filter": run_filter})["runsOrError"]
        assert result["__typename"] == "Runs", result
        return result["results"]

    def wait_idle(self, timeout: float = 300) -> None:
        """Until no run is queued or in progress (DuckDB can then be opened from outside)."""
        poll("no run in flight", lambda: not self.runs(statuses=IN_FLIGHT), timeout)

    def location_entry(self) -> dict[str, Any]:
        workspace = self.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        assert workspace["__typename"] == "Workspace", workspace
        (entry,) = [e for e in workspace["locationEntries"] if e["name"] == LOCATION]
        return entry

    def schedule(self, name: str) -> dict[str, Any]:
        selector = {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "scheduleName": name,
        }
        schedule = self.graphql(SCHEDULE_QUERY, {"selector": selector})["scheduleOrError"]
        assert schedule["__typename"] == "Schedule", schedule
        return schedule

    # --- the warehouse --------------------------------------------------------------------
    def warehouse_query(self, sql: str) -> list[list[Any]]:
        """Rows of one query on the warehouse, read-only, in a throwaway container (as text)."""
        script = (
            "import duckdb, json, sys\n"
            "con = duckdb.connect('/w/warehouse.duckdb', read_only=True)\n"
            "print(json.dumps(con.execute(sys.argv[1]).fetchall(), default=str))\n"
        )
        out = docker(
            "run", "--rm", "--network", "none", "-v", "jaffle_warehouse:/w:ro",
            self.user_code_image(), "python", "-c", script, sql,
        )  # fmt: skip
        return json.loads(out)

    def warehouse_counts(self, tables: list[str]) -> dict[str, int]:
        """Row counts read from the warehouse volume, read-only, in a throwaway container."""
        script = (
            "import duckdb, json, sys\n"
            "con = duckdb.connect('/w/warehouse.duckdb', read_only=True)\n"
            "print(json.dumps({t: con.execute(f'select count(*) from main.{t}').fetchone()[0]"
            " for t in sys.argv[1:]}))\n"
        )
        out = docker(
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "jaffle_warehouse:/w:ro",
            self.user_code_image(),
            "python",
            "-c",
            script,
            *tables,
        )
        return json.loads(out)


@dataclass
class ObservedRun:
    """A run launched through GraphQL, with the run containers seen while it ran."""

    run_id: str
    run: dict
    seconds: float
    containers_seen: set[str] = field(default_factory=set)
    containers_after: list[str] = field(default_factory=list)
    # `docker inspect` of each run container, taken while it ran.
    inspected: list[dict] = field(default_factory=list)


def observe_run(stack: Stack, run_id: str, timeout: float = 300) -> ObservedRun:
    """Wait for the run to finish while watching for its container, then for it to go away."""
    started = time.monotonic()
    seen: set[str] = set()
    inspected: list[dict] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for container in set(stack.run_containers(run_id)) - seen:
                seen.add(container)
                with contextlib.suppress(subprocess.CalledProcessError, IndexError):
                    inspected.append(stack.inspect(container))
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run = stack.wait_run(run_id, timeout)
    finally:
        done.set()
        watcher.join(timeout=10)
    seconds = time.monotonic() - started
    # auto_remove: the engine deletes the container once its process has exited.
    with contextlib.suppress(AssertionError):
        poll("run container removed", lambda: not stack.run_containers(run_id), 60, 1)
    return ObservedRun(run_id, run, seconds, seen, stack.run_containers(run_id), inspected)


@dataclass
class ScheduleTick:
    """What the daily_refresh schedule did with a cron of every minute, before it was stopped."""

    status_before: str
    run: dict | None
    error: str | None
    status_after_stop: str


RUN_QUERY = """
query($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status startTime endTime tags { key value } }
  }
}
"""

RUNS_QUERY = """
query($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status startTime endTime tags { key value } } }
  }
}
"""

WORKSPACE_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation {
            repositories { name assetNodes { assetKey { path } } }
          }
          ... on PythonError { message }
        }
      }
    }
  }
}
"""

SCHEDULE_QUERY = """
query($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { name cronSchedule scheduleState { id status } }
  }
}
"""

STOP_SCHEDULE = """
mutation($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message }
  }
}
"""

CHART_METADATA_QUERY = """
query {
  assetNodes(assetKeys: [{path: ["order_count_chart"]}]) {
    assetMaterializations(limit: 1) {
      runId
      metadataEntries { label __typename ... on UrlMetadataEntry { url } }
    }
  }
}
"""
