"""The daemon's bookkeeping, without threads or clocks of its own (callers pass `now`),
so it is unit-tested directly: the queue of pending scans, the retries of failing stacks,
and the streaks of skipped ticks."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from driftwarden.domain.model import Check, Trigger

# Lower goes first: a scan somebody asked for (`driftwarden trigger`) before a tick.
REQUEST_PRIORITY, SCHEDULE_PRIORITY = 0, 1


@dataclass(frozen=True, order=True)
class QueuedScan:
    priority: int
    sequence: int  # arrival order within a priority
    name: str = field(compare=False)
    trigger: Trigger = field(compare=False)
    actor: str = field(compare=False)
    checks: tuple[Check, ...] | None = field(compare=False, default=None)


class ScanQueue:
    """Pending scans: at most one per stack, requests first, then first come first served."""

    def __init__(self) -> None:
        self._items: list[QueuedScan] = []
        self._sequence = itertools.count()

    def offer(
        self, name: str, trigger: Trigger, actor: str, checks: Sequence[Check] | None = None,
        *, running: bool = False,
    ) -> bool:  # fmt: skip
        """Queue a scan of `name`; False (skipped) when it is running or queued already.
        A request supersedes a queued scheduled tick of the same stack."""
        priority = REQUEST_PRIORITY if trigger is Trigger.REQUEST else SCHEDULE_PRIORITY
        queued = next((item for item in self._items if item.name == name), None)
        if queued is not None and priority < queued.priority:
            self._items.remove(queued)
            queued = None
        if running or queued is not None:
            return False
        self._items.append(QueuedScan(priority, next(self._sequence), name, trigger, actor,
                                      tuple(checks) if checks else None))  # fmt: skip
        return True

    def pop(self) -> QueuedScan | None:
        """The most urgent pending scan, taken off the queue."""
        if not self._items:
            return None
        item = min(self._items)
        self._items.remove(item)
        return item

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class Retries:
    """When failing stacks are tried again (the delay: hosts/lifecycle.py)."""

    def __init__(self) -> None:
        self._retry_at: dict[str, float] = {}

    def retry(self, name: str, *, at: float) -> None:
        self._retry_at[name] = at

    def succeeded(self, name: str) -> None:
        self._retry_at.pop(name, None)

    def due(self, now: float) -> list[str]:
        """Stacks whose retry is due, each returned once."""
        due = sorted(name for name, at in self._retry_at.items() if at <= now)
        for name in due:
            del self._retry_at[name]
        return due


@dataclass
class SkipStreak:
    since: datetime  # the first skip
    count: int = 0


class SkipStreaks:
    """Ticks skipped because their stack was still scanning, per stack, until that scan
    ends. A streak is worth recording twice at most: at its first skip, and at its end
    when there was more than one."""

    def __init__(self) -> None:
        self._streaks: dict[str, SkipStreak] = {}

    def skipped(self, name: str, now: datetime) -> bool:
        """Count a skip of `name`; True when it is the first of a streak."""
        streak = self._streaks.setdefault(name, SkipStreak(now))
        streak.count += 1
        return streak.count == 1

    def ended(self, name: str) -> SkipStreak | None:
        """The scan of `name` ended, and with it its streak: the streak when it had more
        than one skip (a single skip was recorded in full when it happened)."""
        streak = self._streaks.pop(name, None)
        return streak if streak is not None and streak.count > 1 else None
