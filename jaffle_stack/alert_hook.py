"""A webhook receiver on the stack's network, for the alerts (Apprise's `json://` URL): every
POST body is printed as one line, so `docker logs` shows what was sent, in order."""

from __future__ import annotations

import json
from dataclasses import dataclass

from jaffle_stack.compose import docker

NAME = "jaffletest-alert-hook"
ALIAS = "alert-hook"
PORT = 8000
URL = f"json://{ALIAS}:{PORT}/"

RECEIVER = f"""
import http.server, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        sys.stdout.write(body.decode().replace(chr(10), ' ') + chr(10)); sys.stdout.flush()
        self.send_response(200); self.end_headers()
    def log_message(self, *args): pass
http.server.HTTPServer(('0.0.0.0', {PORT}), Hook).serve_forever()
"""


@dataclass
class AlertHook:
    container: str

    def messages(self) -> list[dict]:
        """Every alert received so far: Apprise's JSON (title, message, type)."""
        lines = docker("logs", self.container).splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


def start(image: str, network: str) -> AlertHook:
    docker("rm", "-f", NAME, check=False)
    docker("run", "-d", "--name", NAME, "--network", network, "--network-alias", ALIAS,
           "--entrypoint", "python3", image, "-c", RECEIVER)  # fmt: skip
    return AlertHook(NAME)


def stop() -> None:
    docker("rm", "-f", NAME, check=False)
