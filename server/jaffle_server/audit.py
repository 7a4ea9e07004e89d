"""The audit trail on the `jaffle.audit` logger: one line per sign-in attempt and one per mutation
request, naming the user, never a password (jaffle_server.webserver sends it to stdout)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from starlette.types import Scope

from jaffle_server.user_store import User, is_valid_name

audit_log = logging.getLogger("jaffle.audit")


def audit_mutation(
    user: User, fields: Iterable[str], outcome: str, ids: Iterable[str] = ()
) -> None:
    audit_log.info(
        "audit user=%s role=%s mutation=%s outcome=%s run_id=%s",
        user.name,
        user.role,
        ",".join(fields) or "-",
        outcome,
        ",".join(ids) or "-",
    )


def audit_login(name: str, method: str, outcome: str, scope: Scope) -> None:
    shown = name if is_valid_name(name) else "?"
    client = scope.get("client")
    audit_log.info(
        "login user=%s method=%s outcome=%s client=%s",
        shown,
        method,
        outcome,
        client[0] if client else "-",
    )
