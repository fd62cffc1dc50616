"""Start and drive a real ``starwrs serve`` (separate OS processes, real TLS, real disk).

Used by the end-to-end tests: nothing in here imports a server module; the system is
reached only the way a user reaches it -- the command line, HTTPS, and (for the
dispatcher-level checks) mutual TLS with the deployment's own certificates.
"""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path
from typing import Any

from starwrs.cli.launch import Launched, launch
from starwrs.protocol import FrameReader, FrameWriter
from starwrs.protocol.events import Frame


class System:
    """A running ``starwrs serve`` and what a user can learn about it."""

    def __init__(self, launched: Launched) -> None:
        self.launched = launched
        self.state = launched.state
        self.process = launched.process
        self.url = launched.url
        self.output = launched.output
        self.host = launched.host
        self.port = launched.port

    @property
    def ca(self) -> Path:
        return self.state / "ca.pem"

    def passwords(self) -> dict[str, str]:
        users = json.loads((self.state / "demo-credentials.json").read_text())["users"]
        return {user: entry["password"] for user, entry in users.items()}

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        """The first line the supervisor printed starting with *prefix* (waits)."""
        return self.launched.wait_for_line(prefix, timeout)

    def pids(self) -> dict[str, int]:
        return json.loads((self.state / "pids.json").read_text())

    def deployment(self) -> dict[str, Any]:
        return json.loads((self.state / "deployment.json").read_text())

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def https(self, timeout: float = 30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.host, self.port, context=self.tls(), timeout=timeout
        )

    def logon(self, user: str, password: str | None = None) -> str:
        """Log on over HTTPS; return the session cookie value."""
        status, headers, body = self.post(
            "/logon",
            json.dumps({"user": user, "password": password or self.passwords()[user]}).encode(),
            content_type="application/json",
        )
        assert status == 200, body
        cookie = headers["set-cookie"]
        return cookie.split(";", 1)[0].split("=", 1)[1]

    def post(
        self,
        path: str,
        body: bytes,
        *,
        cookie: str | None = None,
        content_type: str = "application/x-starwrs-frame",
    ) -> tuple[int, dict[str, str], bytes]:
        conn = self.https()
        try:
            headers = {"Content-Type": content_type}
            if cookie is not None:
                headers["Cookie"] = f"__Host-starwrs_session={cookie}"
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def dispatch(self, cookie: str | None, frame: Frame) -> tuple[int, list[Frame]]:
        """POST one frame; return the HTTP status and the frames answered."""
        status, headers, body = self.post("/dispatch", FrameWriter().send(frame), cookie=cookie)
        if headers.get("content-type") != "application/x-starwrs-frame":
            return status, []  # an HTTP-level answer (401, 413, ...) carries JSON
        return status, frames_of(body)

    def stop(self) -> None:
        self.launched.stop()


def frames_of(body: bytes) -> list[Frame]:
    reader = FrameReader()
    reader.receive_data(body)
    reader.receive_data(b"")
    frames: list[Frame] = []
    while True:
        event = reader.next_event()
        if not isinstance(event, Frame):
            return frames
        frames.append(event)


def start(state: Path, *extra: str) -> System:
    """Run ``starwrs serve --demo --port 0`` and wait for its ready line."""
    return System(launch(state, *extra))
