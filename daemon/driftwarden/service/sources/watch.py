"""Seconds, not the schedule: platform events that concern a stack request a drift check
of it at once (a scan request in the store, which `run` and the distributed scheduler
claim as they claim `driftwarden trigger`'s).

Bursts coalesce: a stack's request waits until its events have been quiet for the
source's `debounce` (at most five debounces after the first), at most one request per
stack is pending, and a stack is requested at most once per `min_interval`, so a busy
controller cannot starve the fleet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from driftwarden.config import AuditSourceConfig
from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import Check
from driftwarden.domain.platform import PlatformEvent
from driftwarden.service.logs import logger
from driftwarden.service.runtime import Runtime
from driftwarden.service.sources.platform import SourceReader, concerned_stacks, readers, scopes
from driftwarden.store.requests import request_scan

POLL_SECONDS = 0.5
WATCH_ACTOR = "audit-source"
# How often the platform is asked whether it failed to write audit events.
PLATFORM_CHECK_SECONDS = 60.0


@dataclass
class _Stack:
    first_event: float
    last_event: float
    people: set[str] = field(default_factory=set)


# A stack written without pause is checked anyway once its first write waited this many
# debounces: writes that never stop must not hide the first one.
MAX_WAIT_DEBOUNCES = 5


class CheckRequests:
    """Which stacks to request a check of, and when: pure (the caller gives the time)."""

    def __init__(self, debounce: float, min_interval: float) -> None:
        self.debounce = debounce
        self.min_interval = min_interval
        self._waiting: dict[str, _Stack] = {}
        self._requested: dict[str, float] = {}

    def saw(self, stack: str, events: Sequence[PlatformEvent], now: float) -> None:
        waiting = self._waiting.setdefault(stack, _Stack(now, now))
        waiting.last_event = now
        waiting.people.update(event.people for event in events)

    def due(self, now: float) -> list[tuple[str, list[str]]]:
        """The stacks to request now, each with who wrote; they are then requested."""
        ready = []
        for stack, waiting in list(self._waiting.items()):
            quiet = now - waiting.last_event >= self.debounce or (
                now - waiting.first_event >= MAX_WAIT_DEBOUNCES * self.debounce
            )
            rested = now - self._requested.get(stack, float("-inf")) >= self.min_interval
            if quiet and rested:
                ready.append((stack, sorted(waiting.people)))
                del self._waiting[stack]
                self._requested[stack] = now
        return ready

    @property
    def waiting(self) -> list[str]:
        return sorted(self._waiting)


class AuditWatch:
    """Reads every file source on a thread of its own (POLL_SECONDS apart) and turns
    what concerns a stack into a scan request; the webhook hands its events to `saw`."""

    def __init__(
        self, runtime: Runtime, stopping: threading.Event, *, tail_files: bool = True
    ) -> None:
        self.runtime = runtime  # a writer: it stores events and requests
        self.stopping = stopping
        self.tail_files = tail_files  # `serve` only takes the webhook's: `run` tails
        self._requests: dict[str, CheckRequests] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._platform_checked: dict[str, float] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self.stopping.wait(POLL_SECONDS):
            try:
                self.poll()
            except Exception:  # a source that fails now is tried again next time
                logger.exception("audit source read failed")

    def poll(self, now: float | None = None) -> None:
        """One round: read each file source to its end, then request what is due; now
        and then, ask each platform whether it lost audit events."""
        clock = time.monotonic() if now is None else now
        self._check_platforms(clock)
        for source in self.runtime.config.audit_sources if self.tail_files else ():
            reader = readers(self.runtime).get(source.name)
            if source.path is None or reader is None:
                continue
            try:
                done = reader.read_file()
            except DriftwardenError as exc:
                logger.error("audit source unreadable",
                             extra={"source": source.name, "error": str(exc)})  # fmt: skip
                continue
            if done.events:
                self.saw(reader, done.events, clock)
        self.request_due(clock)

    def _check_platforms(self, clock: float) -> None:
        for source in self.runtime.config.audit_sources:
            if clock - self._platform_checked.get(source.name, float("-inf")) < (
                PLATFORM_CHECK_SECONDS
            ):
                continue
            self._platform_checked[source.name] = clock
            reader = readers(self.runtime).get(source.name)
            try:
                errors = reader.check_platform() if reader is not None else None
            except DriftwardenError as exc:
                logger.warning("cannot ask the platform about its audit log",
                               extra={"source": source.name, "error": str(exc)})  # fmt: skip
                continue
            if errors and any(errors.values()):
                logger.warning(
                    "the platform failed to write audit events: the record is incomplete",
                    extra={"source": source.name, "errors": errors},
                )

    def saw(self, reader: SourceReader, events: Iterable[PlatformEvent], now: float) -> None:
        """Events a source stored: note the stacks they concern."""
        concerned = concerned_stacks(scopes(self.runtime, reader.source), events, reader.kinds)
        with self._lock:
            requests = self._requests_of(reader.source)
            for stack, theirs in concerned.items():
                requests.saw(stack, theirs, now)

    def _requests_of(self, source: AuditSourceConfig) -> CheckRequests:
        current = self._requests.get(source.name)
        if current is None or (current.debounce, current.min_interval) != (
            source.debounce, source.min_interval
        ):  # fmt: skip
            current = CheckRequests(source.debounce, source.min_interval)
            self._requests[source.name] = current
        return current

    def request_due(self, now: float) -> list[str]:
        """Store a drift check request for each stack that is due; their names."""
        with self._lock:
            due = [(name, stack, people) for name, requests in self._requests.items()
                   for stack, people in requests.due(now)]  # fmt: skip
        if not due:
            return []
        known = {stack.name for stack in self.runtime.config.stacks}
        with self.runtime.store.write() as session:
            for source, stack, people in due:
                if stack not in known:
                    continue
                request_scan(
                    session, self.runtime.store.audit, stack=stack, checks=[Check.DRIFT.value],
                    actor=f"{WATCH_ACTOR}:{source}", reason={"changed_by": people},
                )  # fmt: skip
        requested = [stack for _, stack, _ in due if stack in known]
        logger.info("drift checks requested by audit events", extra={"stacks": requested})
        return requested
