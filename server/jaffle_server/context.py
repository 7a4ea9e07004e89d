"""Dagster's own webserver app, with a request context per request whose permissions follow the
signed-in user's role: the UI greys out what the role may not do and Dagster's resolvers refuse it.

Uses private Dagster modules (dagster._core.workspace, dagster_webserver.webserver): Dagster is
pinned in pyproject.toml and tests/integration/test_gate.py runs against it on every upgrade.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster._core.workspace.context import WorkspaceProcessContext, WorkspaceRequestContext
from dagster._core.workspace.permissions import PermissionResult
from dagster_webserver.webserver import DagsterWebserver
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from jaffle_server.roles import Role, role_location_permissions, role_permissions

USER_SCOPE_KEY = "jaffle.user"


class RoleWorkspaceRequestContext(WorkspaceRequestContext):
    """A request context whose permissions are the role's, not the process-wide read_only flag."""

    def __init__(self, *, role: Role, **kwargs: Any) -> None:
        super().__init__(read_only=role is Role.VIEWER, **kwargs)
        self._role = role
        self._role_permissions = role_permissions(role)
        self._role_location_permissions = role_location_permissions(role)

    @property
    def role(self) -> Role:
        return self._role

    @property
    def permissions(self) -> Mapping[str, PermissionResult]:
        return self._role_permissions

    def permissions_for_location(self, *, location_name: str) -> Mapping[str, PermissionResult]:
        return self._role_location_permissions

    def permissions_for_owner(self, *, owner: str) -> Mapping[str, PermissionResult]:
        return {}


def role_of(conn: HTTPConnection | None) -> Role:
    """The role the gate put on the connection; viewer when there is none (least privilege)."""
    user = conn.scope.get(USER_SCOPE_KEY) if conn is not None else None
    return user.role if user is not None else Role.VIEWER


class RoleWebserver(DagsterWebserver):
    def _make_request_context(self, conn: HTTPConnection) -> RoleWorkspaceRequestContext:
        process_context = self._process_context
        assert isinstance(process_context, WorkspaceProcessContext)
        return RoleWorkspaceRequestContext(
            role=role_of(conn),
            instance=process_context.instance,
            current_workspace=process_context.get_current_workspace(),
            process_context=process_context,
            version=process_context.version,
            source=conn,
        )


def create_dagster_app(
    process_context: WorkspaceProcessContext,
    live_data_poll_rate: int | None = None,
    **kwargs: Any,
) -> Starlette:
    """What dagster_webserver.app.create_app_from_workspace_process_context builds, with roles."""
    if process_context.read_only:
        raise ValueError("the role gate needs a writable workspace context; roles decide")
    return RoleWebserver(process_context, "", live_data_poll_rate).create_asgi_app(**kwargs)
