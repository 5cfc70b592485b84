"""Ticks skipped because their stack is still scanning: logged each time, audited as
streaks (a 2 s schedule on a slow stack would flood the chain)."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime

from driftwarden.domain.model import Trigger
from driftwarden.hosts.bookkeeping import SkipStreaks
from driftwarden.service.logs import logger
from driftwarden.service.runtime import DAEMON_ACTOR
from driftwarden.store.db import Store
from driftwarden.store.skips import record_skip_streak_ended, record_skip_streak_started


class SkipRecorder:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()  # skips come from the loop, ends from the workers
        self._streaks = SkipStreaks()

    def skipped(self, name: str, trigger: Trigger) -> None:
        with self._lock:
            first = self._streaks.skipped(name, datetime.now(UTC))
        logger.info("scan skipped: still running", extra={"stack": name, "trigger": trigger})
        if first:
            # Best effort: a skip not recorded must not stop the loop.
            with contextlib.suppress(Exception), self._store.write() as session:
                record_skip_streak_started(session, self._store.audit, name,
                                           actor=DAEMON_ACTOR, trigger=trigger)  # fmt: skip

    def scan_ended(self, name: str) -> None:
        with self._lock:
            streak = self._streaks.ended(name)
        if streak is not None:
            with contextlib.suppress(Exception), self._store.write() as session:
                record_skip_streak_ended(session, self._store.audit, name, actor=DAEMON_ACTOR,
                                         skipped=streak.count, since=streak.since)  # fmt: skip
