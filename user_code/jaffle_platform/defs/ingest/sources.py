"""Where raw files come from: a local directory or an http(s) base URL (RAW_DATA_URI).

Downloads are bounded: one deadline for the whole transfer, a size cap, the body checked against
Content-Length, redirects followed only within the same origin, certificates always verified.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import SplitResult, urljoin, urlsplit

from jaffle_platform import settings
from jaffle_platform.defs.ingest.contract import LoadProblem
from jaffle_platform.defs.ingest.deadline import Watchdog, remaining

MAX_REDIRECTS = 5
CHUNK_BYTES = 1024 * 1024
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# Answers worth asking again: the server or a proxy in front of it is busy or restarting.
RETRYABLE_STATUSES = (408, 425, 429, 500, 502, 503, 504)


class DownloadError(LoadProblem):
    """A raw file could not be fetched. `retryable` says whether asking again may help."""

    def __init__(
        self, table: str, source: str, problem: str, *, retryable: bool, status: int | None = None
    ):
        super().__init__(table, source, problem, f"{table}: could not download {source}: {problem}")
        self.retryable = retryable
        # The HTTP status that ended the download, if one did (404: no such file).
        self.status = status


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


def _download_once(
    table: str, url: str, current: str, dest: Path, max_bytes: int, deadline: float
) -> str | None:
    """One request: None once dest holds the body, or the Location of a redirect."""
    parts = urlsplit(current)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(table, url, f"not an http(s) URL: {current}", retryable=False)
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=remaining(deadline), context=_tls_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=remaining(deadline))
    try:
        conn.connect()
        assert isinstance(conn.sock, socket.socket)
        with Watchdog(conn.sock, deadline) as watchdog:
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
    watchdog: Watchdog,
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
            status=response.status,
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
    """Yield (local path, how to name the file in errors); downloads go to a private temp dir.

    `file_name` may hold one folder (`raw_orders/2018-01-01.csv`, the daily layout).
    """
    uri = uri or settings.raw_data_uri()
    location = file_location(uri, file_name)
    if not settings.raw_data_is_remote(uri):
        yield Path(location), location
        return
    tmp = Path(tempfile.mkdtemp(prefix="jaffle-raw-"))
    try:
        local = tmp / Path(file_name).name
        download(table, location, local)
        yield local, location
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def raw_file_absent(exc: DownloadError) -> bool:
    """True when the server says the file does not exist (a day without a file)."""
    return exc.status in (404, 410)
