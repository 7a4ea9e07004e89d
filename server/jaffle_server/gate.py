"""The login gate: an ASGI wrapper around Dagster's webserver app that everything on the port
goes through (UI, GraphQL over HTTP, GraphQL over WebSocket).

In order, for every request: Host allowlist; Origin / Sec-Fetch-Site; /login and /logout;
authentication (HTTP Basic or the session cookie); then for GraphQL the role's mutation allowlist,
checked on the parsed document before Dagster sees it, with one audit line per mutation request.
Behind it, Dagster's resolvers check the same role again (jaffle_server.context).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from graphql import OperationType
from starlette.datastructures import Headers, QueryParams
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jaffle_server import pages
from jaffle_server.auth import Authenticator, Sessions, UserDirectory, parse_basic
from jaffle_server.context import USER_SCOPE_KEY
from jaffle_server.graphql_gate import (
    UnreadableDocument,
    mutation_fields,
    operation_types,
    parse_document,
    run_ids,
    typenames,
)
from jaffle_server.roles import mutation_allowed
from jaffle_server.users import (
    User,
    is_valid_name,
    read_session_key,
    session_key_file,
    users_file,
)

audit_log = logging.getLogger("jaffle.audit")

COOKIE_NAME = "jaffle_session"
HEALTH_PATH = "/healthz"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_GRAPHQL_BODY = 10 * 1024 * 1024
MAX_FORM_BODY = 16 * 1024
# Dagster's only POST routes besides /graphql: runless asset events, which only admins may report.
REPORT_PREFIXES = {
    "/report_asset_materialization/": "reportAssetMaterialization",
    "/report_asset_check/": "reportAssetCheck",
    "/report_asset_observation/": "reportAssetObservation",
}
WS_POLICY_VIOLATION = 1008


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


def host_name(value: str | None) -> str | None:
    """The host part of a Host header, lowercased, port dropped (IPv6 keeps its brackets off)."""
    if not value:
        return None
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else None
    name = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    return name.rstrip(".") or None


def safe_next(value: str | None) -> str:
    """A same-site relative path to return to after login, or '/'."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
        or len(value) > 2048
        or value.split("?", 1)[0] in ("/login", "/logout")
    ):
        return "/"
    return value


def graphql_error(message: str, status_code: int, code: str) -> JSONResponse:
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status_code,
    )


def _audit(user: User, fields: Iterable[str], outcome: str, ids: Iterable[str] = ()) -> None:
    audit_log.info(
        "audit user=%s role=%s mutation=%s outcome=%s run_id=%s",
        user.name,
        user.role,
        ",".join(fields) or "-",
        outcome,
        ",".join(ids) or "-",
    )


def _log_login(name: str, method: str, outcome: str, scope: Scope) -> None:
    shown = name if is_valid_name(name) else "?"
    client = scope.get("client")
    audit_log.info(
        "login user=%s method=%s outcome=%s client=%s",
        shown,
        method,
        outcome,
        client[0] if client else "-",
    )


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _with_frame_denial(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers.append((b"x-frame-options", b"DENY"))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def _media_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _query_mutations(query: str | None) -> list[str]:
    if not query:
        return []
    try:
        return mutation_fields(parse_document(query))
    except UnreadableDocument:
        return []


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        allowed_hosts: Iterable[str],
        cookie_secure: bool = False,
    ) -> None:
        self.app = app
        self.auth = authenticator
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self.cookie_secure = cookie_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, _with_frame_denial(send))
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # --- checks shared by HTTP and WebSocket -------------------------------------------------

    def _host_allowed(self, headers: Headers) -> bool:
        return host_name(headers.get("host")) in self.allowed_hosts

    def _origin_allowed(self, origin: str) -> bool:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and (parts.hostname or "") in self.allowed_hosts

    async def _authenticate(self, scope: Scope, headers: Headers) -> tuple[User | None, bool]:
        """(user, credentials_offered). A bad Authorization header is not rescued by a cookie."""
        authorization = headers.get("authorization")
        if authorization is not None:
            credentials = parse_basic(authorization)
            if credentials is None:
                return None, True
            user, fresh = await self.auth.check_password(*credentials)
            if fresh:  # once per credentials, not on every API call
                _log_login(credentials[0], "basic", "success" if user else "failed", scope)
            return user, True
        token = cookie_parser(headers.get("cookie", "")).get(COOKIE_NAME)
        if token:
            return self.auth.check_session(token), True
        return None, False

    # --- HTTP ---------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        path: str = scope["path"]
        method: str = scope["method"]

        # Reveals nothing, so any Host may ask: the container healthcheck.
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            return await PlainTextResponse("ok")(scope, receive, send)
        if not self._host_allowed(headers):
            return await PlainTextResponse("Invalid Host header", 400)(scope, receive, send)
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin):
            return await PlainTextResponse("Cross-origin request refused", 403)(
                scope, receive, send
            )
        if method not in SAFE_METHODS and headers.get("sec-fetch-site") in (
            "cross-site",
            "same-site",
        ):
            return await PlainTextResponse("Cross-site request refused", 403)(scope, receive, send)

        if path == "/login":
            return await self._login(scope, receive, send, headers)
        if path == "/logout":
            return await self._logout(scope, receive, send)

        user, _ = await self._authenticate(scope, headers)
        if user is None:
            return await self._unauthenticated(scope, receive, send, headers)
        scope[USER_SCOPE_KEY] = user

        if path == "/graphql":
            return await self._graphql(scope, receive, send, headers, user)
        for prefix, name in REPORT_PREFIXES.items():
            if path.startswith(prefix) and method == "POST":
                allowed = mutation_allowed(user.role, name)
                _audit(user, [name], "allowed" if allowed else "refused")
                if not allowed:
                    return await graphql_error(
                        f"role {user.role} may not {name}", 403, "FORBIDDEN"
                    )(scope, receive, send)
                return await self.app(scope, receive, send)
        if method not in SAFE_METHODS:
            # Deny by default: a POST route added by a Dagster upgrade stays closed.
            return await PlainTextResponse("Method Not Allowed", 405)(scope, receive, send)
        await self.app(scope, receive, send)

    async def _unauthenticated(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers
    ) -> None:
        navigating = (
            scope["method"] in ("GET", "HEAD")
            and "text/html" in headers.get("accept", "")
            and headers.get("sec-fetch-mode", "navigate") == "navigate"
        )
        if not navigating:
            response = graphql_error("Authentication required", 401, "UNAUTHENTICATED")
            response.headers["WWW-Authenticate"] = 'Basic realm="jaffle", charset="UTF-8"'
            return await response(scope, receive, send)
        target = scope["path"] + (
            "?" + scope["query_string"].decode("latin-1") if scope["query_string"] else ""
        )
        if headers.get("sec-fetch-site") == "cross-site":
            # A link from another site comes without the SameSite=Strict cookie; reload from here.
            html = pages.reload_page(safe_next(target))
            return await HTMLResponse(html, headers={"Content-Security-Policy": pages.CSP})(
                scope, receive, send
            )
        location = "/login?next=" + quote(safe_next(target), safe="")
        await RedirectResponse(location, status_code=303)(scope, receive, send)

    def _cookie_secure(self, scope: Scope) -> bool:
        return self.cookie_secure or scope.get("scheme") == "https"

    async def _login(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        method = scope["method"]
        if method in ("GET", "HEAD"):
            next_path = safe_next(QueryParams(scope["query_string"]).get("next"))
            token = cookie_parser(headers.get("cookie", "")).get(COOKIE_NAME)
            if token and self.auth.check_session(token):
                return await RedirectResponse(next_path, status_code=303)(scope, receive, send)
            return await self._login_form(scope, receive, send, next_path, None, 200)
        if method != "POST":
            return await PlainTextResponse("Method Not Allowed", 405)(scope, receive, send)
        if _media_type(headers) != "application/x-www-form-urlencoded":
            return await PlainTextResponse("Unsupported Media Type", 415)(scope, receive, send)
        body = await _read_body(receive, MAX_FORM_BODY)
        if body is None:
            return await PlainTextResponse("Request too large", 413)(scope, receive, send)
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        name = form.get("username", [""])[0].strip()
        password = form.get("password", [""])[0]
        next_path = safe_next(form.get("next", ["/"])[0])
        user = (await self.auth.check_password(name, password))[0] if name and password else None
        _log_login(name, "form", "success" if user else "failed", scope)
        if user is None:
            return await self._login_form(
                scope, receive, send, next_path, "Wrong user name or password.", 401
            )
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            self.auth.sessions.issue(user),
            max_age=self.auth.sessions.max_age_seconds,
            path="/",
            secure=self._cookie_secure(scope),
            httponly=True,
            samesite="strict",
        )
        await response(scope, receive, send)

    async def _login_form(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        next_path: str,
        error: str | None,
        status_code: int,
    ) -> None:
        response = HTMLResponse(
            pages.login_page(next_path, error),
            status_code=status_code,
            headers={"Content-Security-Policy": pages.CSP, "Cache-Control": "no-store"},
        )
        await response(scope, receive, send)

    async def _logout(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in ("GET", "HEAD"):
            csp = {"Content-Security-Policy": pages.CSP}
            return await HTMLResponse(pages.logout_page(), headers=csp)(scope, receive, send)
        if scope["method"] != "POST":
            return await PlainTextResponse("Method Not Allowed", 405)(scope, receive, send)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(
            COOKIE_NAME,
            path="/",
            secure=self._cookie_secure(scope),
            httponly=True,
            samesite="strict",
        )
        await response(scope, receive, send)

    async def _graphql(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, user: User
    ) -> None:
        method = scope["method"]
        url_query = QueryParams(scope["query_string"])
        if method != "POST":
            if "query" in url_query:
                # Dagster would execute it; GET carries no CORS pre-check, so nothing runs by GET.
                fields = _query_mutations(url_query.get("query"))
                if fields:
                    _audit(user, fields, "refused")
                return await graphql_error(
                    "GraphQL over GET is refused: POST application/json", 405, "METHOD_NOT_ALLOWED"
                )(scope, receive, send)
            return await self.app(scope, receive, send)

        if _media_type(headers) != "application/json":
            fields = _query_mutations(url_query.get("query"))
            if fields:
                _audit(user, fields, "refused")
            return await graphql_error(
                "GraphQL requests must be POSTed as application/json", 415, "UNSUPPORTED_MEDIA_TYPE"
            )(scope, receive, send)

        body = await _read_body(receive, MAX_GRAPHQL_BODY)
        if body is None:
            return await graphql_error("Request too large", 413, "TOO_LARGE")(scope, receive, send)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("query"), str):
            return await graphql_error("Expected a JSON object with a query", 400, "BAD_REQUEST")(
                scope, receive, send
            )
        try:
            fields = mutation_fields(parse_document(data["query"]))
        except UnreadableDocument as exc:
            return await graphql_error(f"Unreadable GraphQL document: {exc}", 400, "BAD_REQUEST")(
                scope, receive, send
            )
        if not fields:
            return await self.app(scope, _replay(body, receive), send)

        variables: Any = data.get("variables")
        if isinstance(variables, str):
            try:
                variables = json.loads(variables)
            except ValueError:
                variables = None
        refused = [f for f in fields if not mutation_allowed(user.role, f)]
        if refused:
            _audit(user, fields, "refused", run_ids(variables))
            return await graphql_error(
                f"role {user.role} may not run {', '.join(refused)}", 403, "FORBIDDEN"
            )(scope, receive, send)

        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, _replay(body, receive), capture)
        finally:
            try:
                response_data = json.loads(b"".join(chunks)).get("data")
            except (ValueError, AttributeError):
                response_data = None
            outcome = "refused" if "UnauthorizedError" in typenames(response_data) else "allowed"
            _audit(user, fields, outcome, run_ids(variables, response_data))

    # --- WebSocket ------------------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        refused = (
            not self._host_allowed(headers)
            or origin is None
            or not self._origin_allowed(origin)
            or scope["path"] != "/graphql"
        )
        user = None if refused else (await self._authenticate(scope, headers))[0]
        if user is None:
            message = await receive()  # websocket.connect
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
            return
        scope[USER_SCOPE_KEY] = user

        async def only_subscriptions() -> Message:
            message = await receive()
            if message["type"] != "websocket.receive":
                return message
            try:
                data = json.loads(message.get("text") or message.get("bytes") or "")
            except ValueError:
                return message
            if not isinstance(data, dict) or data.get("type") != "start":
                return message
            payload = data.get("payload")
            query = payload.get("query") if isinstance(payload, dict) else None
            try:
                document = parse_document(query) if isinstance(query, str) else None
            except UnreadableDocument:
                document = None
            if document is not None and operation_types(document) == {OperationType.SUBSCRIPTION}:
                return message
            try:
                fields = mutation_fields(document) if document is not None else []
            except UnreadableDocument:
                fields = []
            if fields:
                _audit(user, fields, "refused")
            # Only subscriptions travel over the socket; anything else ends it.
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
            return {"type": "websocket.disconnect", "code": WS_POLICY_VIOLATION}

        await self.app(scope, only_subscriptions, send)


def create_gate(app: ASGIApp, settings: GateSettings) -> Gate:
    key = read_session_key(settings.session_key_file)
    sessions = Sessions(key, max_age_seconds=int(settings.session_hours * 3600))
    authenticator = Authenticator(UserDirectory(settings.users_file), sessions, key)
    return Gate(
        app,
        authenticator=authenticator,
        allowed_hosts=settings.allowed_hosts,
        cookie_secure=settings.cookie_secure,
    )
