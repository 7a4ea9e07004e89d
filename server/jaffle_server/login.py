"""The gate's own routes: /login (the form, and the session cookie it sets), /logout, and what a
request without valid credentials gets (a 401 for API clients, the login page for a browser)."""

from __future__ import annotations

from typing import Literal, TypedDict
from urllib.parse import parse_qs, quote

from starlette.datastructures import Headers, QueryParams
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.types import Receive, Scope, Send

from jaffle_server import pages
from jaffle_server.asgi import graphql_error, read_body
from jaffle_server.audit import audit_login
from jaffle_server.auth import COOKIE_NAME, Authenticator
from jaffle_server.request_checks import media_type

MAX_FORM_BODY = 16 * 1024


class _CookieFlags(TypedDict):
    path: str
    secure: bool
    httponly: bool
    samesite: Literal["strict"]


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


class LoginRoutes:
    def __init__(self, auth: Authenticator, cookie_secure: bool) -> None:
        self.auth = auth
        self.cookie_secure = cookie_secure

    def _cookie_flags(self, scope: Scope) -> _CookieFlags:
        secure = self.cookie_secure or scope.get("scheme") == "https"
        return {"path": "/", "secure": secure, "httponly": True, "samesite": "strict"}

    async def unauthenticated(
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

    async def login(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        method = scope["method"]
        if method in ("GET", "HEAD"):
            next_path = safe_next(QueryParams(scope["query_string"]).get("next"))
            token = cookie_parser(headers.get("cookie", "")).get(COOKIE_NAME)
            if token and self.auth.check_session(token):
                return await RedirectResponse(next_path, status_code=303)(scope, receive, send)
            return await _login_form(scope, receive, send, next_path, None, 200)
        if method != "POST":
            return await PlainTextResponse("Method Not Allowed", 405)(scope, receive, send)
        if media_type(headers) != "application/x-www-form-urlencoded":
            return await PlainTextResponse("Unsupported Media Type", 415)(scope, receive, send)
        body = await read_body(receive, MAX_FORM_BODY)
        if body is None:
            return await PlainTextResponse("Request too large", 413)(scope, receive, send)
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        name = form.get("username", [""])[0].strip()
        password = form.get("password", [""])[0]
        next_path = safe_next(form.get("next", ["/"])[0])
        user = (await self.auth.check_password(name, password))[0] if name and password else None
        audit_login(name, "form", "success" if user else "failed", scope)
        if user is None:
            return await _login_form(
                scope, receive, send, next_path, "Wrong user name or password.", 401
            )
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            self.auth.sessions.issue(user),
            max_age=self.auth.sessions.max_age_seconds,
            **self._cookie_flags(scope),
        )
        await response(scope, receive, send)

    async def logout(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in ("GET", "HEAD"):
            csp = {"Content-Security-Policy": pages.CSP}
            return await HTMLResponse(pages.logout_page(), headers=csp)(scope, receive, send)
        if scope["method"] != "POST":
            return await PlainTextResponse("Method Not Allowed", 405)(scope, receive, send)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, **self._cookie_flags(scope))
        await response(scope, receive, send)


async def _login_form(
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
