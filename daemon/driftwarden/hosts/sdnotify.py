"""The systemd notify protocol (sd_notify(3)), spoken directly over ``$NOTIFY_SOCKET``.

Each message is one datagram of newline-separated ``KEY=VALUE`` assignments sent to the
AF_UNIX SOCK_DGRAM socket named by ``$NOTIFY_SOCKET``: a filesystem path, or a name in
the abstract namespace when it starts with ``@`` (sent with a leading NUL byte instead).
Without ``$NOTIFY_SOCKET`` (not started by systemd, or ``NotifyAccess=none``) every method
is a no-op. Sending never raises: a lost notification must not take the daemon down.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

ENV_SOCKET = "NOTIFY_SOCKET"
ENV_WATCHDOG_USEC = "WATCHDOG_USEC"
ENV_WATCHDOG_PID = "WATCHDOG_PID"


def _socket_address(value: str) -> str | bytes | None:
    """The sockaddr for ``$NOTIFY_SOCKET``: ``@name`` → b"\\0name", ``/path`` as is."""
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # e.g. vsock:… (systemd ≥ 254 VMs) or garbage: not ours to speak


def _one_line(text: str) -> str:
    """STATUS= ends at the first newline of the datagram: fold the text onto one line."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


class Notifier:
    """Tells systemd about the daemon's life cycle; a no-op outside a notify service."""

    def __init__(
        self,
        address: str | bytes | None,
        *,
        watchdog_usec: int | None = None,
    ) -> None:
        self._address = address
        self._watchdog_usec = watchdog_usec

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Build from ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID``."""
        env = os.environ if environ is None else environ
        raw_socket = env.get(ENV_SOCKET, "")
        address = _socket_address(raw_socket) if raw_socket else None
        if raw_socket and address is None:
            log.debug("ignoring unsupported %s=%r", ENV_SOCKET, raw_socket)
        return cls(address, watchdog_usec=_watchdog_usec(env))

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or None."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def ready(self) -> bool:
        """Start-up finished (``Type=notify`` leaves "activating")."""
        return self.send("READY=1")

    def status(self, text: str) -> bool:
        """A one-line free-form status shown by ``systemctl status``."""
        return self.send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """Keep-alive ping for ``WatchdogSec=``."""
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        """Shutdown began."""
        return self.send("STOPPING=1")

    def reloading(self) -> bool:
        """Reload began (``Type=notify-reload`` wants the CLOCK_MONOTONIC timestamp too)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def send(self, message: str) -> bool:
        """Send one datagram; True when it was sent, False when disabled or it failed."""
        if self._address is None:
            return False
        try:
            with socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            ) as sock:
                # Never waits: a receiver that does not drain its socket (a full queue)
                # costs this one message, not a hung shutdown.
                sock.sendto(message.encode(), self._address)
        except OSError as exc:
            log.debug("sd_notify %r to %r failed: %s", message, self._address, exc)
            return False
        return True


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    """``$WATCHDOG_USEC`` when it is meant for this process, else None."""
    raw_usec = env.get(ENV_WATCHDOG_USEC, "")
    try:
        usec = int(raw_usec)
    except ValueError:
        return None
    if usec <= 0:
        return None
    raw_pid = env.get(ENV_WATCHDOG_PID, "")
    if raw_pid:
        try:
            pid = int(raw_pid)
        except ValueError:
            return None
        if pid != os.getpid():
            return None
    return usec
