"""A deadline for a whole exchange on a blocking socket, not for each read."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


def remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


class Watchdog:
    """Shuts the socket down at the deadline, which ends any read blocked on it.

    A socket timeout alone bounds each recv, not their sum: a server sending a byte a second
    (headers or body) would never trip it.
    """

    def __init__(self, sock: socket.socket, deadline: float):
        self.fired = threading.Event()
        self._sock = sock
        self._timer = threading.Timer(remaining(deadline), self._cut)
        self._timer.daemon = True

    def _cut(self) -> None:
        self.fired.set()
        # The plain socket's shutdown: SSLSocket.shutdown would also drop its TLS state under
        # the reading thread's feet.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def check(self) -> None:
        if self.fired.is_set():
            raise TimeoutError

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
