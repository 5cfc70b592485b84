"""What a transport sends: one audit event, already rendered as one line of JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

CONNECT_TIMEOUT = 10.0  # seconds: a destination that does not answer is retried later


@dataclass(frozen=True)
class Message:
    seq: int
    time: str  # RFC 3339, UTC ("…Z")
    action: str
    body: str  # one line of JSON (ASCII)


class Sender(Protocol):
    def send(self, messages: Sequence[Message]) -> None:
        """Send in order; OSError when the destination did not take them."""

    def confirmed(self) -> bool:
        """Whether what was sent so far has been taken (HTTP: at once; syslog over TCP,
        which acknowledges nothing: the connection is still up some time after)."""

    def close(self) -> None: ...
