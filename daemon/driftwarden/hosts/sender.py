"""The outbox sender: delivers queued notifications on a thread of its own, so a slow
target never stalls the loop."""

from __future__ import annotations

import threading

from driftwarden.service.logs import logger
from driftwarden.service.messages.notifications import deliver_due
from driftwarden.service.runtime import DAEMON_ACTOR, Runtime

NOTIFY_POLL_SECONDS = 2.0


class OutboxSender:
    """A delivery pass every NOTIFY_POLL_SECONDS until `stopping` is set."""

    def __init__(self, runtime: Runtime, stopping: threading.Event) -> None:
        self._runtime = runtime
        self._stopping = stopping
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(NOTIFY_POLL_SECONDS):
            self.deliver_once()

    def deliver_once(self) -> None:
        try:
            deliver_due(self._runtime.store, self._runtime.config, DAEMON_ACTOR)
        except Exception:
            logger.exception("notification delivery failed")

    def close(self) -> None:
        """After `stopping` is set and the scans have ended: wait for the thread to finish
        its pass, then deliver what the last scans queued (the rest waits in the outbox)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.deliver_once()
