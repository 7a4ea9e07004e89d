"""The one polling loop every wait of the toolkit goes through."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Timeout(AssertionError):
    """A wait ran out of time. An AssertionError, so that a test shows it as a failure."""


def poll(what: str, check: Callable[[], T | None], timeout: float, interval: float = 2.0) -> T:
    """Call `check` until it returns something truthy; fail with `what` after `timeout` s.

    An OSError (a refused connection, an HTTP error), a RuntimeError (GraphQL errors) or a failed
    command counts as "not yet" and is named in the timeout's message."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
            last_error = e
        if time.monotonic() > deadline:
            raise Timeout(
                f"timed out after {timeout:.0f}s waiting for {what}"
                + (f" (last error: {last_error})" if last_error else "")
            )
        time.sleep(interval)
