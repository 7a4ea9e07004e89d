"""The stack as the tests and the benchmark drive it: a compose project and the Dagster API it
serves, its users, its warehouse, and runs watched from launch until their container is gone."""

from __future__ import annotations

import contextlib
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from jaffle_stack import warehouse
from jaffle_stack.compose import Compose
from jaffle_stack.graphql import Auth, Dagster
from jaffle_stack.wait import poll


@dataclass(kw_only=True)
class Stack(Compose, Dagster):
    """A compose project and its webserver's API. API calls go as `auth` (the admin, once
    `read_admin_password` has been read into it) unless a call names another user."""

    # role -> (user, password) of the users added with `add_user`.
    users: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def admin(self) -> Auth:
        return self.auth

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

    def warehouse_query(self, sql: str) -> list[list[Any]]:
        return warehouse.query(self.user_code_image(), sql)

    def warehouse_counts(self, tables: list[str]) -> dict[str, int]:
        return warehouse.counts(self.user_code_image(), tables)


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
