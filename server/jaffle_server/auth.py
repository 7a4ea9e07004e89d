"""Who is asking: HTTP Basic credentials and signed session cookies, checked against the users
file (re-read when it changes, so `jaffle-users` takes effect without a restart)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import Scope

from jaffle_server.audit import audit_login
from jaffle_server.user_store import User, load_users, verify_password

COOKIE_NAME = "jaffle_session"
_CACHE_LIMIT = 1024


class UserDirectory:
    """The users file, reloaded whenever its inode, size or mtime changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int, int] | None = None
        self._users: dict[str, User] = {}

    def get(self, name: str) -> User | None:
        try:
            st = os.stat(self._path)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._users = load_users(self._path) if stamp else {}
            self._stamp = stamp
        return self._users.get(name)


class Sessions:
    """Signed, timestamped cookie values naming a user and their current fingerprint."""

    def __init__(
        self, key: bytes, max_age_seconds: int, signer: type[TimestampSigner] = TimestampSigner
    ) -> None:
        self.max_age_seconds = max_age_seconds
        self._serializer = URLSafeTimedSerializer(key, salt="jaffle-session", signer=signer)

    def issue(self, user: User) -> str:
        return self._serializer.dumps([user.name, user.fingerprint])

    def read(self, token: str) -> tuple[str, str] | None:
        try:
            value = self._serializer.loads(token, max_age=self.max_age_seconds)
        except BadSignature:  # also SignatureExpired
            return None
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, str) for v in value)
        ):
            return None
        return value[0], value[1]


def parse_basic(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep else None


class Authenticator:
    """Checks passwords (argon2, off the event loop) and sessions against the users file.

    A successful Basic check is remembered under an HMAC of name and password, so an API client
    sending the same credentials on every request does not pay argon2 each time; the memory is
    tied to the user's fingerprint and forgotten when that changes.
    """

    def __init__(self, users: UserDirectory, sessions: Sessions, key: bytes) -> None:
        self.users = users
        self.sessions = sessions
        self._mac_key = hashlib.sha256(b"jaffle-basic-cache\0" + key).digest()
        self._verified: dict[bytes, str] = {}

    async def check_password(self, name: str, password: str) -> tuple[User | None, bool]:
        """(the user or None, whether argon2 ran: False when remembered from before)."""
        user = self.users.get(name)
        mac = hmac.new(self._mac_key, f"{name}\0{password}".encode(), "sha256").digest()
        if user is not None and hmac.compare_digest(self._verified.get(mac, ""), user.fingerprint):
            return user, False
        if not await run_in_threadpool(verify_password, user, password):
            return None, True
        assert user is not None
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()
        self._verified[mac] = user.fingerprint
        return user, True

    def check_session(self, token: str) -> User | None:
        parsed = self.sessions.read(token)
        if parsed is None:
            return None
        name, fingerprint = parsed
        user = self.users.get(name)
        if user is None or not hmac.compare_digest(user.fingerprint, fingerprint):
            return None
        return user

    async def identify(self, scope: Scope, headers: Headers) -> User | None:
        """The user a request's Basic credentials or session cookie name, or None.

        A bad Authorization header is not rescued by a cookie."""
        authorization = headers.get("authorization")
        if authorization is not None:
            credentials = parse_basic(authorization)
            if credentials is None:
                return None
            user, fresh = await self.check_password(*credentials)
            if fresh:  # once per credentials, not on every API call
                audit_login(credentials[0], "basic", "success" if user else "failed", scope)
            return user
        token = cookie_parser(headers.get("cookie", "")).get(COOKIE_NAME)
        if token:
            return self.check_session(token)
        return None
