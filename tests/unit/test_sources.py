"""Downloads from an http(s) RAW_DATA_URI, against a real http.server on 127.0.0.1."""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jaffle_platform.defs.ingest.sources import DownloadError, download, fetch_raw_file, origin

BODY = b"id,first_name,last_name\n1,Ann,B.\n2,Bob,C.\n"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass

    def _head(self, status: int, length: int | None, **headers: str) -> None:
        self.send_response(status)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def do_GET(self):  # noqa: N802
        if self.path == "/data/raw_customers.csv":
            self._head(200, len(BODY))
            self.wfile.write(BODY)
        elif self.path == "/short":
            self._head(200, 1000)
            self.wfile.write(BODY)
            self.close_connection = True
        elif self.path == "/away":
            self._head(302, 0, Location="http://webserver:3000/graphql?query=mutation")
        elif self.path == "/other-port":
            port = self.connection.getsockname()[1] + 1
            self._head(302, 0, Location=f"http://127.0.0.1:{port}/data/raw_customers.csv")
        elif self.path == "/moved":
            self._head(301, 0, Location="/data/raw_customers.csv")
        elif self.path == "/loop":
            self._head(302, 0, Location="/loop")
        elif self.path == "/big":
            self._head(200, 10_000)
            self.wfile.write(b"x" * 10_000)
        elif self.path == "/big-unsized":
            self._head(200, None)
            self.close_connection = True
            for _ in range(10):
                self.wfile.write(b"x" * 1_000)
        elif self.path == "/trickle":
            self._head(200, 100)
            try:
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
        elif self.path == "/slow-headers":
            self.send_response(200)
            self.flush_headers()
            try:
                for i in range(100):
                    self.wfile.write(f"X-Slow-{i}: 1\r\n".encode())
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
        elif self.path == "/busy":
            self._head(503, 0)
        else:
            self._head(404, 0)


@pytest.fixture
def server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def fetch(url: str, tmp_path: Path, **kwargs) -> bytes:
    dest = tmp_path / "out.csv"
    download("raw_customers", url, dest, **kwargs)
    return dest.read_bytes()


def test_normal_download_and_same_origin_redirect(server, tmp_path):
    assert fetch(server + "/data/raw_customers.csv", tmp_path) == BODY
    assert fetch(server + "/moved", tmp_path) == BODY


def test_body_shorter_than_content_length_is_refused_naming_the_url(server, tmp_path):
    with pytest.raises(DownloadError) as err:
        fetch(server + "/short", tmp_path)
    assert f"after {len(BODY)} of 1000 bytes" in str(err.value)
    assert server + "/short" in str(err.value)
    assert err.value.retryable


@pytest.mark.parametrize("path", ["/away", "/other-port"])
def test_redirect_to_another_origin_is_refused(server, tmp_path, path):
    with pytest.raises(DownloadError) as err:
        fetch(server + path, tmp_path)
    assert "another origin" in str(err.value)
    assert not err.value.retryable
    if path == "/away":
        assert "http://webserver:3000/graphql" in str(err.value)


def test_redirect_loop_stops(server, tmp_path):
    with pytest.raises(DownloadError, match="redirects"):
        fetch(server + "/loop", tmp_path)


@pytest.mark.parametrize("path", ["/big", "/big-unsized"])
def test_size_cap(server, tmp_path, path):
    with pytest.raises(DownloadError) as err:
        fetch(server + path, tmp_path, max_bytes=5_000)
    assert "5000-byte limit" in str(err.value) and "JAFFLE_DOWNLOAD_MAX_BYTES" in str(err.value)
    assert not err.value.retryable
    assert fetch(server + path, tmp_path, max_bytes=10_000) == b"x" * 10_000


def test_size_cap_comes_from_env(server, tmp_path, monkeypatch):
    monkeypatch.setenv("JAFFLE_DOWNLOAD_MAX_BYTES", "5000")
    with pytest.raises(DownloadError, match="5000-byte limit"):
        fetch(server + "/big", tmp_path)


@pytest.mark.parametrize("path", ["/trickle", "/slow-headers"])
def test_trickling_server_hits_the_deadline_for_the_whole_download(
    server, tmp_path, monkeypatch, path
):
    # Each byte arrives well within any per-read timeout; only a whole-download deadline stops it.
    monkeypatch.setenv("JAFFLE_DOWNLOAD_TIMEOUT_SECONDS", "0.6")
    started = time.monotonic()
    with pytest.raises(DownloadError) as err:
        fetch(server + path, tmp_path)
    assert time.monotonic() - started < 2
    assert "not finished within 0.6 s" in str(err.value)
    assert err.value.retryable


def test_server_errors_are_retryable_missing_files_are_not(server, tmp_path):
    with pytest.raises(DownloadError) as busy:
        fetch(server + "/busy", tmp_path)
    assert "HTTP 503" in str(busy.value) and busy.value.retryable
    with pytest.raises(DownloadError) as missing:
        fetch(server + "/nope.csv", tmp_path)
    assert "HTTP 404" in str(missing.value) and not missing.value.retryable


def test_connection_refused_is_retryable(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError) as err:
        fetch(f"http://127.0.0.1:{port}/raw_customers.csv", tmp_path)
    assert err.value.retryable


def test_fetch_raw_file_downloads_to_a_temp_file_removed_afterwards(server, monkeypatch):
    monkeypatch.setenv("RAW_DATA_URI", server + "/data/")
    with fetch_raw_file("raw_customers", "raw_customers.csv") as (path, source):
        assert path.read_bytes() == BODY
        assert source == server + "/data/raw_customers.csv"
    assert not path.exists()


def test_origin_fills_default_ports():
    assert origin("https://Example.com/a") == origin("https://example.com:443/b")
    assert origin("http://example.com/a") != origin("https://example.com/a")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_self_signed_certificate_is_refused(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    srv.socket = tls.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{srv.server_address[1]}/data/raw_customers.csv"
        with pytest.raises(DownloadError) as err:
            fetch(url, tmp_path)
        assert "certificate not trusted" in str(err.value)
        assert not err.value.retryable
    finally:
        srv.shutdown()
        srv.server_close()
