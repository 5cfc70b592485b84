"""Forwarding the audit chain off the host as it happens: every `[[audit.forward]]`
destination gets every event, in seq order, at least once, from a cursor kept in the
store — so an outage of any length loses nothing: the events wait in the store, and the
forwarder, backing off (1 s, 2 s, … up to a minute), sends them when it is back."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from driftwarden.config.settings import ForwardConfig
from driftwarden.domain.redact import redact_url
from driftwarden.forward import HttpSender, Message, Sender, SyslogSender
from driftwarden.forward.syslog import SETTLE_SECONDS
from driftwarden.service.logs import logger
from driftwarden.service.runtime import Runtime
from driftwarden.store.audit import ChainEvent
from driftwarden.store.export import render
from driftwarden.store.forwarding import cursor, delivered, failed, pending
from driftwarden.store.models import ForwardCursor

BATCH = 500  # events per send
POLL_SECONDS = 0.5


def sender_for(target: ForwardConfig) -> Sender:
    if target.scheme.startswith("syslog"):
        return SyslogSender(
            target.url, ca_file=target.ca_file, hostname=target.hostname, app_name=target.app_name
        )
    return HttpSender(target.url, token=target.token(), ca_file=target.ca_file)


@dataclass
class _Destination:
    target: ForwardConfig
    sender: Sender
    confirmed: int  # every event up to here was taken (the store's cursor)
    sent: int  # sent, maybe not yet taken (syslog over TCP)
    retry_at: float = 0.0
    failures: int = 0


class Forwarder:
    """One thread polling every destination every POLL_SECONDS."""

    def __init__(self, runtime: Runtime, stopping: threading.Event) -> None:
        self._runtime = runtime
        self._stopping = stopping
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._destinations: dict[str, _Destination] = {}

    def start(self) -> None:
        if not self._runtime.config.audit.forward:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audit-forward", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not (self._stopping.is_set() or self._stop.is_set()):
            self.poll()
            self._stopping.wait(POLL_SECONDS)

    def poll(self) -> None:
        """One pass over every destination (the config's, which a reload may change)."""
        targets = {target.name: target for target in self._runtime.config.audit.forward}
        for name in list(self._destinations):
            if name not in targets or self._destinations[name].target != targets[name]:
                self._destinations.pop(name).sender.close()
        for name, target in targets.items():
            try:
                self._forward(self._destination(name, target))
            except Exception:  # the store or a bug: logged, tried again next pass
                logger.exception("audit forwarding failed", extra={"forward": name})

    def _destination(self, name: str, target: ForwardConfig) -> _Destination:
        known = self._destinations.get(name)
        if known is None:
            at = cursor(self._runtime.store, name).seq
            known = _Destination(target, sender_for(target), at, at)
            self._destinations[name] = known
        return known

    def _forward(self, dest: _Destination, *, last: bool = False) -> None:
        now = time.monotonic()
        if now < dest.retry_at:
            return
        store, name = self._runtime.store, dest.target.name
        try:
            if dest.sent > dest.confirmed and dest.sender.confirmed():
                delivered(store, name, dest.sent)
                dest.confirmed = dest.sent
            while last or not self._stopping.is_set():
                events = pending(store, dest.sent, BATCH)
                if not events:
                    break
                dest.sender.send([_message(event, dest.target) for event in events])
                dest.sent = events[-1].seq
                if dest.sender.confirmed():
                    delivered(store, name, dest.sent)
                    dest.confirmed = dest.sent
        except OSError as exc:
            self._failed(dest, str(exc) or type(exc).__name__)
            return
        if dest.failures:
            logger.info(
                "audit forwarding resumed",
                extra={"forward": name, "url": redact_url(dest.target.url), "after": dest.failures},
            )
            dest.failures = 0

    def _failed(self, dest: _Destination, error: str) -> None:
        """Nothing unconfirmed counts as taken: it is sent again, from the cursor."""
        dest.sender.close()
        dest.sent = dest.confirmed
        dest.failures = failed(self._runtime.store, dest.target.name, error)
        retry_max = float(self._runtime.config.audit.forward_retry_max)
        delay = min(retry_max, 2.0 ** min(dest.failures - 1, 30))
        dest.retry_at = time.monotonic() + delay
        if dest.failures == 1 or dest.failures % 20 == 0:
            logger.warning(
                "audit forwarding failed; retrying",
                extra={
                    "forward": dest.target.name,
                    "url": redact_url(dest.target.url),
                    "error": error,
                    "failures": dest.failures,
                    "retry_in": delay,
                },
            )

    def drain(self, timeout: float) -> dict[str, ForwardCursor]:
        """Send everything appended so far to every destination, retrying (with backoff)
        until each has taken it or `timeout` seconds passed (`audit forward`); the cursors."""
        store = self._runtime.store
        head = store.audit.head(store)[0]
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            reached = {t.name: cursor(store, t.name) for t in self._runtime.config.audit.forward}
            if all(c.seq >= head for c in reached.values()) or time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
        for dest in self._destinations.values():
            dest.sender.close()
        self._destinations.clear()
        return reached

    def close(self) -> None:
        """When the daemon stops: one last pass (the shutdown digest goes out if it can)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        for dest in self._destinations.values():
            dest.retry_at = 0.0
            try:
                self._forward(dest, last=True)
                if dest.sent > dest.confirmed:  # a last wait for what TCP cannot confirm
                    time.sleep(SETTLE_SECONDS)
                    self._forward(dest, last=True)
            except Exception:
                logger.exception("audit forwarding failed", extra={"forward": dest.target.name})
            dest.sender.close()
        self._destinations.clear()


def _message(event: ChainEvent, target: ForwardConfig) -> Message:
    return Message(event.seq, event.time, event.action, render(event, target.format))
