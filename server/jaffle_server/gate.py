"""The login gate: an ASGI wrapper around Dagster's webserver app that everything on the port
goes through (UI, GraphQL over HTTP, GraphQL over WebSocket).

In order, for every request: Host allowlist; Origin / Sec-Fetch-Site (jaffle_server.request_checks);
/login and /logout (jaffle_server.login); authentication (HTTP Basic or the session cookie,
jaffle_server.auth); then for GraphQL the role's mutation allowlist, checked on the parsed document
before Dagster sees it, with one audit line per mutation request (jaffle_server.graphql_routes).
Behind it, Dagster's resolvers check the same role again (jaffle_server.context).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from jaffle_server.asgi import with_frame_denial
from jaffle_server.auth import COOKIE_NAME, Authenticator, Sessions, UserDirectory
from jaffle_server.context import USER_SCOPE_KEY
from jaffle_server.graphql_routes import (
    WS_POLICY_VIOLATION,
    MutationGuard,
    report_mutation,
    subscriptions_only,
)
from jaffle_server.login import LoginRoutes, safe_next
from jaffle_server.request_checks import (
    SAFE_METHODS,
    host_name,
    http_refusal,
    websocket_allowed,
)
from jaffle_server.user_store import read_session_key, session_key_file, users_file

__all__ = [
    "COOKIE_NAME",
    "HEALTH_PATH",
    "Gate",
    "GateSettings",
    "create_gate",
    "host_name",
    "safe_next",
]

HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class GateSettings:
    allowed_hosts: frozenset[str]
    session_hours: float
    cookie_secure: bool
    users_file: Path
    session_key_file: Path

    @classmethod
    def from_env(cls) -> GateSettings:
        hosts = os.environ.get("JAFFLE_ALLOWED_HOSTS", "localhost,127.0.0.1")
        return cls(
            allowed_hosts=frozenset(h.strip().lower() for h in hosts.split(",") if h.strip()),
            session_hours=float(os.environ.get("JAFFLE_SESSION_HOURS", "12")),
            cookie_secure=os.environ.get("JAFFLE_COOKIE_SECURE", "") == "1",
            users_file=users_file(),
            session_key_file=session_key_file(),
        )


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        allowed_hosts: Iterable[str],
        cookie_secure: bool = False,
        ready: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.app = app
        # What the server still waits for (None once it serves the code), for the healthcheck.
        self.ready = ready
        self.auth = authenticator
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self.login = LoginRoutes(authenticator, cookie_secure)
        self.mutations = MutationGuard(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, with_frame_denial(send))
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        path: str = scope["path"]
        method: str = scope["method"]

        # Reveals nothing, so any Host may ask: the container healthcheck.
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            waiting = self.ready()
            response = PlainTextResponse(f"waiting: {waiting}", 503) if waiting else None
            return await (response or PlainTextResponse("ok"))(scope, receive, send)
        refusal = http_refusal(headers, method, self.allowed_hosts)
        if refusal is not None:
            return await refusal(scope, receive, send)

        if path == "/login":
            return await self.login.login(scope, receive, send, headers)
        if path == "/logout":
            return await self.login.logout(scope, receive, send)

        user = await self.auth.identify(scope, headers)
        if user is None:
            return await self.login.unauthenticated(scope, receive, send, headers)
        scope[USER_SCOPE_KEY] = user

        if path == "/graphql":
            return await self.mutations.http(scope, receive, send, headers, user)
        report = report_mutation(path) if method == "POST" else None
        if report is not None:
            return await self.mutations.report(scope, receive, send, user, report)
        if method not in SAFE_METHODS:
            # Deny by default: a POST route added by a Dagster upgrade stays closed.
            return await PlainTextResponse("Method Not Allowed", 405)(scope, receive, send)
        await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        allowed = websocket_allowed(headers, scope["path"], self.allowed_hosts)
        user = await self.auth.identify(scope, headers) if allowed else None
        if user is None:
            message = await receive()  # websocket.connect
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
            return
        scope[USER_SCOPE_KEY] = user
        await self.app(scope, subscriptions_only(receive, send, user), send)


def create_gate(
    app: ASGIApp, settings: GateSettings, ready: Callable[[], str | None] = lambda: None
) -> Gate:
    key = read_session_key(settings.session_key_file)
    sessions = Sessions(key, max_age_seconds=int(settings.session_hours * 3600))
    authenticator = Authenticator(UserDirectory(settings.users_file), sessions, key)
    return Gate(
        app,
        authenticator=authenticator,
        allowed_hosts=settings.allowed_hosts,
        cookie_secure=settings.cookie_secure,
        ready=ready,
    )
