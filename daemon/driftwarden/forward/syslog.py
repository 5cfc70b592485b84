"""RFC 5424 syslog over TCP (RFC 6587 octet counting), TLS optional (RFC 5425).

    <110>1 2026-12-07T10:00:00.000001Z HOST driftwarden - finding.opened - {"…"}

Facility 13 (log audit), severity 6 (informational); MSGID is the audit action; the
message is the event's JSON (ASCII). TCP acknowledges nothing a sender can see, so what
was sent counts as taken only once the connection has stayed up for a while after it:
a connection that drops before that is reopened and the unconfirmed events are sent
again (at least once; a receiver may see an event twice, never miss one)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from driftwarden.forward.message import CONNECT_TIMEOUT, Message

PRIORITY = 13 * 8 + 6  # log audit . informational
SETTLE_SECONDS = 1.0  # up this long after the last send: what was sent was taken
_PRINTABLE = {chr(c) for c in range(33, 127)}


def _field(value: str, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII, no spaces, at most `limit` characters."""
    cleaned = "".join(c if c in _PRINTABLE else "_" for c in value)[:limit]
    return cleaned or "-"


def frame(message: Message, hostname: str, app_name: str) -> bytes:
    line = (
        f"<{PRIORITY}>1 {message.time} {_field(hostname, 255)} {_field(app_name, 48)} - "
        f"{_field(message.action, 32)} - {message.body}"
    ).encode("ascii", errors="replace")
    return b"%d %s" % (len(line), line)


class SyslogSender:
    def __init__(
        self,
        url: str,
        *,
        ca_file: Path | None = None,
        hostname: str | None = None,
        app_name: str = "driftwarden",
    ) -> None:
        parts = urlsplit(url)
        self._tls = parts.scheme.lower() == "syslog+tls"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (6514 if self._tls else 514)
        self._ca_file = ca_file
        self._hostname = hostname or socket.gethostname()
        self._app_name = app_name
        self._socket: socket.socket | None = None
        self._last_send = 0.0

    def _connect(self) -> socket.socket:
        if self._socket is None:
            raw = socket.create_connection((self._host, self._port), timeout=CONNECT_TIMEOUT)
            if self._tls:
                context = ssl.create_default_context(
                    cafile=str(self._ca_file) if self._ca_file else None
                )
                try:
                    raw = context.wrap_socket(raw, server_hostname=self._host)
                except BaseException:
                    raw.close()
                    raise
            self._socket = raw
        return self._socket

    def send(self, messages: Sequence[Message]) -> None:
        if not self._alive():
            self.close()
        sock = self._connect()
        try:
            sock.sendall(b"".join(frame(m, self._hostname, self._app_name) for m in messages))
        except OSError:
            self.close()
            raise
        self._last_send = time.monotonic()

    def confirmed(self) -> bool:
        if time.monotonic() - self._last_send < SETTLE_SECONDS:
            return False
        return self._alive()

    def _alive(self) -> bool:
        """Whether the connection is still up: a receiver that went away closed or reset
        it. A syslog receiver never writes to us, so anything to read is TLS's own (a
        session ticket: read and dropped) or the end of the connection."""
        sock = self._socket
        if sock is None:
            return False
        sock.setblocking(False)
        try:
            while True:
                if isinstance(sock, ssl.SSLSocket):
                    data = sock.recv(1024)
                else:
                    data = sock.recv(1, socket.MSG_PEEK)
                if not data:
                    return False  # closed by the receiver
                if not isinstance(sock, ssl.SSLSocket):
                    return True  # (never happens with syslog: data is not consumed here)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return True  # nothing (more) to read: still connected
        except OSError:
            return False  # reset, or a TLS error
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(CONNECT_TIMEOUT)

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None
