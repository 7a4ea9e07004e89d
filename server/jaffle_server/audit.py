"""The audit trail on the `jaffle.audit` logger: one line per sign-in attempt and one per mutation
request, naming the user, never a password (jaffle_server.webserver sends it to stdout)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from starlette.types import Scope

from jaffle_server.user_store import User, is_valid_name

audit_log = logging.getLogger("jaffle.audit")
# Run and backfill ids come from the request's variables: anything else (a newline that would
# forge a second audit line) is shown as `?`.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def audit_mutation(
    user: User, fields: Iterable[str], outcome: str, ids: Iterable[str] = ()
) -> None:
    audit_log.info(
        "audit user=%s role=%s mutation=%s outcome=%s run_id=%s",
        user.name,
        user.role,
        ",".join(fields) or "-",
        outcome,
        ",".join(i if _ID.fullmatch(i) else "?" for i in ids) or "-",
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
