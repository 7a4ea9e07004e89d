"""Where raw files come from: a local directory or an http(s) base URL (RAW_DATA_URI).

Downloads are bounded: one deadline for the whole transfer, a size cap, the body checked against
Content-Length, redirects followed only within the same origin, certificates always verified.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import shutil
import socket
import ssl
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import SplitResult, urljoin, urlsplit

from jaffle_platform import settings

MAX_REDIRECTS = 5
CHUNK_BYTES = 1024 * 1024
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# Answers worth asking again: the server or a proxy in front of it is busy or restarting.
RETRYABLE_STATUSES = (408, 425, 429, 500, 502, 503, 504)


class DownloadError(Exception):
    """A raw file could not be fetched. `retryable` says whether asking again may help."""

    def __init__(self, table: str, source: str, problem: str, *, retryable: bool):
        self.table = table
        self.source = source
        self.problem = problem
        self.retryable = retryable
        super().__init__(f"{table}: could not download {source}: {problem}")


def file_location(uri: str, file_name: str) -> str:
    if settings.raw_data_is_remote(uri):
        return uri.rstrip("/") + "/" + file_name
    return str(Path(uri) / file_name)


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def _tls_context() -> ssl.SSLContext:
    # The default context verifies the chain against the system store and checks the host name.
    return ssl.create_default_context()


def download(
    table: str,
    url: str,
    dest: Path,
    *,
    max_bytes: int | None = None,
    timeout_s: float | None = None,
) -> int:
    """Write url's body to dest and return its length, or raise DownloadError."""
    max_bytes = settings.download_max_bytes() if max_bytes is None else max_bytes
    timeout_s = settings.download_timeout_seconds() if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout_s
    current = url
    try:
        for _ in range(MAX_REDIRECTS + 1):
            location = _download_once(table, url, current, dest, max_bytes, deadline)
            if location is None:
                return dest.stat().st_size
            target = urljoin(current, location)
            if origin(target) != origin(url):
                raise DownloadError(
                    table,
                    url,
                    f"redirected to {target}, another origin than {url}; only redirects within "
                    "the same scheme, host and port are followed",
                    retryable=False,
                )
            current = target
        raise DownloadError(table, url, f"more than {MAX_REDIRECTS} redirects", retryable=False)
    except ssl.SSLCertVerificationError as exc:
        raise DownloadError(
            table, url, f"certificate not trusted: {exc.verify_message}", retryable=False
        ) from None
    except TimeoutError:
        raise DownloadError(
            table,
            url,
            f"not finished within {timeout_s:g} s (JAFFLE_DOWNLOAD_TIMEOUT_SECONDS)",
            retryable=True,
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(table, url, f"network error: {exc!r}", retryable=True) from None


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


class _Watchdog:
    """Shuts the socket down at the deadline, which ends any read blocked on it.

    A socket timeout alone bounds each recv, not their sum: a server sending a byte a second
    (headers or body) would never trip it.
    """

    def __init__(self, sock: socket.socket, deadline: float):
        self.fired = threading.Event()
        self._sock = sock
        self._timer = threading.Timer(_remaining(deadline), self._cut)
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

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()


def _download_once(
    table: str, url: str, current: str, dest: Path, max_bytes: int, deadline: float
) -> str | None:
    """One request: None once dest holds the body, or the Location of a redirect."""
    parts = urlsplit(current)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(table, url, f"not an http(s) URL: {current}", retryable=False)
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=_remaining(deadline), context=_tls_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=_remaining(deadline))
    try:
        conn.connect()
        assert isinstance(conn.sock, socket.socket)
        with _Watchdog(conn.sock, deadline) as watchdog:
            try:
                return _exchange(table, url, parts, conn, dest, max_bytes, watchdog)
            except (OSError, http.client.HTTPException):
                watchdog.check()
                raise
    finally:
        conn.close()


def _exchange(
    table: str,
    url: str,
    parts: SplitResult,
    conn: http.client.HTTPConnection,
    dest: Path,
    max_bytes: int,
    watchdog: _Watchdog,
) -> str | None:
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn.request("GET", path, headers={"Accept-Encoding": "identity"})
    response = conn.getresponse()
    watchdog.check()
    if response.status in REDIRECT_STATUSES:
        location = response.getheader("Location")
        if not location:
            raise DownloadError(
                table, url, f"HTTP {response.status} without a Location", retryable=False
            )
        return location
    if response.status != 200:
        raise DownloadError(
            table,
            url,
            f"HTTP {response.status} {response.reason}",
            retryable=response.status in RETRYABLE_STATUSES,
        )
    declared = _content_length(table, url, response.getheader("Content-Length"))
    if declared is not None and declared > max_bytes:
        raise DownloadError(table, url, _too_big(declared, max_bytes), retryable=False)
    received = 0
    with dest.open("wb") as out:
        # http.client closes the response itself once Content-Length bytes have arrived.
        while not response.isclosed():
            chunk = response.read1(CHUNK_BYTES)
            # A cut socket reads as a clean end of body: only the watchdog can tell them apart.
            watchdog.check()
            if not chunk:
                break
            received += len(chunk)
            if received > max_bytes:
                raise DownloadError(table, url, _too_big(received, max_bytes), retryable=False)
            out.write(chunk)
    if declared is not None and received != declared:
        raise DownloadError(
            table,
            url,
            f"connection closed after {received} of {declared} bytes (Content-Length)",
            retryable=True,
        )
    return None


def _content_length(table: str, url: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        length = -1
    if length < 0:
        raise DownloadError(table, url, f"invalid Content-Length {value!r}", retryable=False)
    return length


def _too_big(size: int, max_bytes: int) -> str:
    return (
        f"larger than the {max_bytes}-byte limit (at least {size} bytes; "
        "raise JAFFLE_DOWNLOAD_MAX_BYTES if the file is expected to be this big)"
    )


@contextmanager
def fetch_raw_file(
    table: str, file_name: str, uri: str | None = None
) -> Iterator[tuple[Path, str]]:
    """Yield (local path, how to name the file in errors); downloads go to a private temp dir."""
    uri = uri or settings.raw_data_uri()
    location = file_location(uri, file_name)
    if not settings.raw_data_is_remote(uri):
        yield Path(location), location
        return
    tmp = Path(tempfile.mkdtemp(prefix="jaffle-raw-"))
    try:
        local = tmp / file_name
        download(table, location, local)
        yield local, location
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class LandingFileChanged(Exception):
    """The landed file is not the version the sensor saw (rewritten, replaced or removed)."""

    def __init__(self, table: str, source: str, problem: str):
        self.table = table
        self.source = source
        self.problem = problem
        super().__init__(
            f"{table}: {source} changed since the sensor saw it ({problem}); not loaded. "
            "It will be picked up again once it stays unchanged."
        )


def copy_landed_file(
    table: str, file_name: str, expected_size: int, expected_mtime_ns: int, dest: Path
) -> tuple[str, str]:
    """Copy LANDING_DIR/file_name to dest if it is still the version the sensor saw.

    Returns (source, sha256 of the copy). The name is always the table's fixed file name, never a
    path from run config, and a symlink is refused, so config cannot make a run read other files.
    """
    source_path = settings.landing_dir() / file_name
    source = str(source_path)
    expected = (expected_size, expected_mtime_ns)
    try:
        fd = os.open(source_path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise LandingFileChanged(table, source, "it is gone") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LandingFileChanged(table, source, "it is now a symlink") from None
        raise
    digest = hashlib.sha256()
    copied = 0
    with os.fdopen(fd, "rb") as src:
        before = os.fstat(src.fileno())
        if not stat.S_ISREG(before.st_mode):
            raise LandingFileChanged(table, source, "it is not a regular file")
        if (before.st_size, before.st_mtime_ns) != expected:
            raise LandingFileChanged(
                table,
                source,
                f"{_sig(before.st_size, before.st_mtime_ns)}, sensor saw {_sig(*expected)}",
            )
        with dest.open("wb") as out:
            while chunk := src.read(CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
                copied += len(chunk)
        after = os.fstat(src.fileno())
    if (after.st_size, after.st_mtime_ns) != expected or copied != expected_size:
        raise LandingFileChanged(
            table, source, f"written to while being copied ({copied} bytes read)"
        )
    return source, digest.hexdigest()


def _sig(size: int, mtime_ns: int) -> str:
    return f"size={size} mtime_ns={mtime_ns}"
