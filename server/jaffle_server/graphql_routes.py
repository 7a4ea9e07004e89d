"""Dagster's routes that change things, behind the gate: GraphQL over HTTP and over WebSocket, and
the report_asset_* POST routes. The role's mutation allowlist is checked on the parsed document
before Dagster sees it, with one audit line per mutation request."""

from __future__ import annotations

import json
from typing import Any

from graphql import OperationType
from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jaffle_server.asgi import graphql_error, read_body, replay
from jaffle_server.audit import audit_mutation
from jaffle_server.graphql_gate import (
    UnreadableDocument,
    mutation_fields,
    operation_types,
    parse_document,
    run_ids,
    typenames,
)
from jaffle_server.request_checks import media_type
from jaffle_server.roles import mutation_allowed
from jaffle_server.user_store import User

MAX_GRAPHQL_BODY = 10 * 1024 * 1024
# Dagster's only POST routes besides /graphql: runless asset events, which only admins may report.
REPORT_PREFIXES = {
    "/report_asset_materialization/": "reportAssetMaterialization",
    "/report_asset_check/": "reportAssetCheck",
    "/report_asset_observation/": "reportAssetObservation",
}
WS_POLICY_VIOLATION = 1008


def report_mutation(path: str) -> str | None:
    """The mutation a report_asset_* route stands for, or None for any other path."""
    for prefix, name in REPORT_PREFIXES.items():
        if path.startswith(prefix):
            return name
    return None


def _audit_refused_query(user: User, query: str | None) -> None:
    """Audits a query that is refused unread, when it names mutations."""
    if not query:
        return
    try:
        fields = mutation_fields(parse_document(query))
    except UnreadableDocument:
        return
    if fields:
        audit_mutation(user, fields, "refused")


def _json_variables(data: dict[str, Any]) -> Any:
    variables: Any = data.get("variables")
    if isinstance(variables, str):
        try:
            variables = json.loads(variables)
        except ValueError:
            variables = None
    return variables


class MutationGuard:
    """Lets a user's mutations through to Dagster's `app` only when their role allows them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def report(
        self, scope: Scope, receive: Receive, send: Send, user: User, name: str
    ) -> None:
        allowed = mutation_allowed(user.role, name)
        audit_mutation(user, [name], "allowed" if allowed else "refused")
        if not allowed:
            return await graphql_error(f"role {user.role} may not {name}", 403, "FORBIDDEN")(
                scope, receive, send
            )
        await self.app(scope, receive, send)

    async def http(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, user: User
    ) -> None:
        url_query = QueryParams(scope["query_string"])
        if scope["method"] != "POST":
            if "query" in url_query:
                # Dagster would execute it; GET carries no CORS pre-check, so nothing runs by GET.
                _audit_refused_query(user, url_query.get("query"))
                return await graphql_error(
                    "GraphQL over GET is refused: POST application/json", 405, "METHOD_NOT_ALLOWED"
                )(scope, receive, send)
            return await self.app(scope, receive, send)

        if media_type(headers) != "application/json":
            _audit_refused_query(user, url_query.get("query"))
            return await graphql_error(
                "GraphQL requests must be POSTed as application/json", 415, "UNSUPPORTED_MEDIA_TYPE"
            )(scope, receive, send)

        if "query" in url_query:
            # Dagster reads the URL's query when it does not take the body for JSON (its
            # content-type test is case-sensitive): only the body, which the gate checks, counts.
            _audit_refused_query(user, url_query.get("query"))
            return await graphql_error(
                "A GraphQL query in the URL is refused: send it in the JSON body",
                400,
                "BAD_REQUEST",
            )(scope, receive, send)
        # Hand Dagster the exact content type the gate accepted, so it parses the checked body.
        scope = {
            **scope,
            "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
            + [(b"content-type", b"application/json")],
        }

        body = await read_body(receive, MAX_GRAPHQL_BODY)
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
            return await self.app(scope, replay(body, receive), send)

        variables = _json_variables(data)
        refused = [f for f in fields if not mutation_allowed(user.role, f)]
        if refused:
            audit_mutation(user, fields, "refused", run_ids(variables))
            return await graphql_error(
                f"role {user.role} may not run {', '.join(refused)}", 403, "FORBIDDEN"
            )(scope, receive, send)

        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay(body, receive), capture)
        finally:
            try:
                response_data = json.loads(b"".join(chunks)).get("data")
            except (ValueError, AttributeError):
                response_data = None
            outcome = "refused" if "UnauthorizedError" in typenames(response_data) else "allowed"
            audit_mutation(user, fields, outcome, run_ids(variables, response_data))


def subscriptions_only(receive: Receive, send: Send, user: User) -> Receive:
    """A `receive` for the socket that closes it on any operation but a subscription."""

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
            audit_mutation(user, fields, "refused")
        # Only subscriptions travel over the socket; anything else ends it.
        await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
        return {"type": "websocket.disconnect", "code": WS_POLICY_VIOLATION}

    return only_subscriptions
