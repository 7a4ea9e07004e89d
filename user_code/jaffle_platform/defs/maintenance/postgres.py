"""Dagster's own Postgres database, as pg_dump and pg_restore reach it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
from sqlalchemy.engine import make_url


class PostgresToolError(Exception):
    """pg_dump or pg_restore is missing or failed; the message says which and why."""


@dataclass(frozen=True)
class PostgresTarget:
    """Where Dagster's database is, taken from the instance's own storage URL."""

    dbname: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> PostgresTarget:
        parsed = make_url(url)
        # A Unix socket directory comes as ?host=/path (libpq's own spelling).
        host = parsed.host or parsed.query.get("host")
        return cls(
            dbname=parsed.database or "",
            host=host if isinstance(host, str) else None,
            port=parsed.port,
            user=parsed.username,
            password=parsed.password if isinstance(parsed.password, str) else None,
        )

    def connection_args(self) -> list[str]:
        """Host, port, user and database as libpq tool arguments; never the password."""
        args = []
        if self.host:
            args += ["--host", self.host]
        if self.port:
            args += ["--port", str(self.port)]
        if self.user:
            args += ["--username", self.user]
        return [*args, "--dbname", self.dbname]

    def env(self) -> dict[str, str]:
        """The process environment plus PGPASSWORD: argv is visible to every local user (ps)."""
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env

    def __str__(self) -> str:
        where = self.host or "local socket"
        port = f":{self.port}" if self.port else ""
        return f"database {self.dbname!r} on {where}{port} as {self.user or 'the default user'}"


def instance_postgres(instance: dg.DagsterInstance) -> PostgresTarget | None:
    """Dagster's database when the instance stores its runs in Postgres, else None (SQLite)."""
    url = getattr(instance.run_storage, "postgres_url", None)
    return PostgresTarget.from_url(url) if isinstance(url, str) else None


def run_tool(tool: str, args: Sequence[str], target: PostgresTarget) -> None:
    """Runs a libpq tool against the target; a missing tool or non-zero exit is an error."""
    try:
        done = subprocess.run(
            [tool, *args, *target.connection_args()],
            env=target.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise PostgresToolError(
            f"{tool} is not installed (it comes with the postgresql-client package)"
        ) from None
    if done.returncode != 0:
        detail = done.stderr.strip()[-2000:] or f"exit code {done.returncode}"
        raise PostgresToolError(f"{tool} failed on {target}: {detail}")
