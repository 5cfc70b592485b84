"""Real local notification endpoints: an SMTP server (aiosmtpd) and an HTTP endpoint.

Both listen on 127.0.0.1 on a free port, start fresh for each test and keep what they
received for the test to read. Reusable anywhere under tests/ by importing the fixtures
(`from tests.notify.conftest import smtp_server, http_endpoint, closed_port`) or their
classes.

`smtp_server` -> SmtpServer
    .host, .port
    .url(to="ops@example.com", sender="driftwarden@example.com") -> "mailto://…?mode=insecure"
    .messages      -> list[email.message.EmailMessage], parsed, in arrival order
    .envelopes     -> list[Envelope] (mail_from, rcpt_tos, raw bytes)
    .wait_for(n, timeout=5.0) -> the messages once at least n arrived (else AssertionError)

`http_endpoint` -> HttpEndpoint
    .url(path="/hook", scheme="json") -> "json://127.0.0.1:PORT/hook" (any apprise scheme
                      that posts over plain HTTP: json, xml, form, …)
    .requests      -> list[Recorded] (method, path, headers, body; .json() decodes the body)
    .fail_with(500) -> answer every request with that status from now on
    .succeed()     -> answer 200 again
    .delay(2.0)    -> wait that long before answering (0 to stop waiting)
    .stop()        -> close the listening socket: the port refuses connections afterwards

`closed_port` -> int: a port on 127.0.0.1 where nothing listens.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller

HOST = "127.0.0.1"


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return cast(int, sock.getsockname()[1])


# ---------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes  # the message as received (headers and body)


class _SmtpHandler:
    """aiosmtpd handler: accept everything, keep it."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        with self.lock:
            self.envelopes.append(
                Envelope(str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(content))
            )
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server (no TLS, no auth) that keeps every message it accepts."""

    def __init__(self, host: str, port: int, handler: _SmtpHandler) -> None:
        self.host = host
        self.port = port
        self._handler = handler

    def url(self, to: str = "ops@example.com", sender: str = "driftwarden@example.com") -> str:
        """An apprise mailto:// URL that delivers here without login or TLS."""
        return (
            f"mailto://{self.host}:{self.port}"
            f"?from={quote(sender, safe='@')}&to={quote(to, safe='@')}&mode=insecure"
        )

    @property
    def envelopes(self) -> list[Envelope]:
        with self._handler.lock:
            return list(self._handler.envelopes)

    @property
    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes
        ]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.envelopes) < count:
            assert time.monotonic() < deadline, (
                f"expected {count} message(s), got {len(self.envelopes)}"
            )
            time.sleep(0.02)
        return self.messages


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    handler = _SmtpHandler()
    controller = None
    for _ in range(5):  # the free port may be taken between the probe and the bind
        candidate = Controller(handler, hostname=HOST, port=free_port(), ready_timeout=5.0)
        try:
            candidate.start()
        except (OSError, RuntimeError, TimeoutError):
            continue
        controller = candidate
        break
    assert controller is not None, "could not start the SMTP server"
    try:
        yield SmtpServer(HOST, controller.port, handler)
    finally:
        controller.stop()


# ---------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 200  # what the endpoint answered

    def json(self) -> Any:
        return json.loads(self.body)


class HttpEndpoint:
    """A real HTTP server recording every request; it answers 200 unless told otherwise."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.status = 200
        self.delay_seconds = 0.0
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with endpoint._lock:
                    status, delay = endpoint.status, endpoint.delay_seconds
                    endpoint.requests.append(
                        Recorded(self.command, self.path, dict(self.headers.items()), body, status)
                    )
                if delay:
                    time.sleep(delay)
                payload = b"{}" if status < 300 else b'{"error": "failing on purpose"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up waiting
                    pass

            do_POST = do_PUT = do_GET = _handle  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self.host = HOST
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="http-endpoint", daemon=True
        )
        self._thread.start()
        self._stopped = False

    def url(self, path: str = "/hook", scheme: str = "json") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    def fail_with(self, status: int) -> None:
        with self._lock:
            self.status = status

    def succeed(self) -> None:
        self.fail_with(200)

    def delay(self, seconds: float) -> None:
        with self._lock:
            self.delay_seconds = seconds

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)


@pytest.fixture
def http_endpoint() -> Iterator[HttpEndpoint]:
    endpoint = HttpEndpoint()
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture
def closed_port() -> int:
    return free_port()


# The end-to-end tests deploy local-demo stacks like the integration tests.
from tests.integration.conftest import demo, deployed_demo, fleet  # noqa: E402

__all__ = ["closed_port", "demo", "deployed_demo", "fleet", "http_endpoint", "smtp_server"]
