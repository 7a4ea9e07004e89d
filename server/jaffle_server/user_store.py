"""The webserver's user accounts: a JSON file of argon2id hashes and roles, the session signing
key beside it, and the first-start bootstrap. The `jaffle-users` command is jaffle_server.users."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from jaffle_server.roles import Role, parse_role

DEFAULT_AUTH_DIR = Path("/var/lib/jaffle/auth")
USERS_FILE_NAME = "users.json"
SESSION_KEY_FILE_NAME = "session_key"
MIN_PASSWORD_LENGTH = 12
ADMIN_NAME = "admin"

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserError(Exception):
    """A refused user-management request; the message is meant for the operator."""


def users_file(auth_dir: Path = DEFAULT_AUTH_DIR) -> Path:
    return Path(os.environ.get("JAFFLE_USERS_FILE", str(auth_dir / USERS_FILE_NAME)))


def session_key_file(auth_dir: Path = DEFAULT_AUTH_DIR) -> Path:
    return Path(os.environ.get("JAFFLE_SESSION_KEY_FILE", str(auth_dir / SESSION_KEY_FILE_NAME)))


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str
    created: str

    @property
    def fingerprint(self) -> str:
        """Changes with the role or the password; sessions carry it, so they end then."""
        digest = hashlib.sha256(f"{self.name}\0{self.role}\0{self.password_hash}".encode())
        return digest.hexdigest()[:32]


def is_valid_name(name: str) -> bool:
    return bool(_NAME_RE.fullmatch(name))


def validate_name(name: str) -> str:
    if not is_valid_name(name):
        raise UserError(
            f"invalid user name {name!r}: lowercase letters, digits, '_', '.', '-' (max 64), "
            "starting with a letter or digit"
        )
    return name


def validate_password(password: str) -> str:
    if not password:
        raise UserError("empty password")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: User | None, password: str) -> bool:
    """Constant-time-ish: an unknown user still costs one argon2 verification."""
    try:
        return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and bool(user)
    except (VerificationError, InvalidHashError):
        return False


def load_users(path: Path) -> dict[str, User]:
    if not path.exists():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {
        name: User(
            name=name,
            role=parse_role(entry["role"]),
            password_hash=entry["password_hash"],
            created=entry.get("created", ""),
        )
        for name, entry in raw.get("users", {}).items()
    }


def _write_private(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_users(path: Path, users: dict[str, User]) -> None:
    doc = {
        "version": 1,
        "users": {
            u.name: {"role": str(u.role), "password_hash": u.password_hash, "created": u.created}
            for u in sorted(users.values(), key=lambda u: u.name)
        },
    }
    _write_private(path, (json.dumps(doc, indent=2) + "\n").encode())


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_user(path: Path, name: str, role: Role, password: str, *, update: bool = False) -> User:
    users = load_users(path)
    validate_name(name)
    validate_password(password)
    existing = users.get(name)
    if existing and not update:
        raise UserError(f"user {name!r} exists (use --update or `jaffle-users passwd`)")
    user = User(
        name=name,
        role=role,
        password_hash=hash_password(password),
        created=existing.created if existing else _now(),
    )
    users[name] = user
    save_users(path, users)
    return user


def set_password(path: Path, name: str, password: str) -> User:
    users = load_users(path)
    if name not in users:
        raise UserError(f"no user {name!r}")
    validate_password(password)
    old = users[name]
    users[name] = User(name, old.role, hash_password(password), old.created)
    save_users(path, users)
    return users[name]


def remove_user(path: Path, name: str) -> None:
    users = load_users(path)
    if name not in users:
        raise UserError(f"no user {name!r}")
    del users[name]
    save_users(path, users)


def read_session_key(path: Path) -> bytes:
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise UserError(f"session key {path} too short; delete it, run jaffle-users bootstrap")
    return key


def bootstrap(auth_dir: Path, admin_password: str | None) -> str | None:
    """Create the session key if missing and, when no user exists, the `admin` user.

    Returns the generated admin password (to be shown once), or None when `admin_password` was
    given or users already existed. The files default to `auth_dir`, unless JAFFLE_USERS_FILE /
    JAFFLE_SESSION_KEY_FILE name them.
    """
    users_path = users_file(auth_dir)
    key_path = session_key_file(auth_dir)
    if not key_path.exists():
        _write_private(key_path, secrets.token_hex(32).encode() + b"\n")
    if load_users(users_path):
        return None
    generated = None
    if not admin_password:
        admin_password = generated = secrets.token_urlsafe(18)
    add_user(users_path, ADMIN_NAME, Role.ADMIN, admin_password)
    return generated
