"""Where a request comes from, checked before anyone is asked who they are: the Host allowlist,
the Origin, Sec-Fetch-Site on state-changing methods, and the declared content type."""

from __future__ import annotations

from collections.abc import Set
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


def host_allowed(headers: Headers, allowed_hosts: Set[str]) -> bool:
    return host_name(headers.get("host")) in allowed_hosts


def origin_allowed(origin: str, allowed_hosts: Set[str]) -> bool:
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in allowed_hosts


def http_refusal(
    headers: Headers, method: str, allowed_hosts: Set[str]
) -> PlainTextResponse | None:
    """The response refusing an HTTP request from the wrong host or site, or None to go on."""
    if not host_allowed(headers, allowed_hosts):
        return PlainTextResponse("Invalid Host header", 400)
    origin = headers.get("origin")
    if origin is not None and not origin_allowed(origin, allowed_hosts):
        return PlainTextResponse("Cross-origin request refused", 403)
    if method not in SAFE_METHODS and headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return PlainTextResponse("Cross-site request refused", 403)
    return None


def websocket_allowed(headers: Headers, path: str, allowed_hosts: Set[str]) -> bool:
    """A WebSocket opens only to /graphql, from an allowed Host, with an allowed Origin."""
    origin = headers.get("origin")
    return (
        host_allowed(headers, allowed_hosts)
        and origin is not None
        and origin_allowed(origin, allowed_hosts)
        and path == "/graphql"
    )


def media_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()
