"""What the daemon tells systemd in `STATUS=`: stacks, running scans, their states and
the next job; sent when it changes."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime

from driftwarden.domain.model import Check, StackState, stack_state
from driftwarden.hosts.sdnotify import Notifier
from driftwarden.service.runtime import Runtime
from driftwarden.store.queries import stack_summaries


def status_line(
    stacks: int, running: int, states: Iterable[StackState], upcoming: tuple[str, datetime] | None
) -> str:
    """E.g. `3 stacks, 1 running, 1 drifted, 0 pending, 0 failing; next: demo at 12:00:00`."""
    counted = list(states)
    line = (
        f"{stacks} stacks, {running} running, "
        f"{counted.count(StackState.DRIFTED)} drifted, "
        f"{counted.count(StackState.CHANGES_PENDING)} pending, "
        f"{counted.count(StackState.FAILED)} failing"
    )
    if upcoming is not None:
        tag, when = upcoming
        line += f"; next: {tag} at {when:%H:%M:%S}"
    return line


class DaemonStatus:
    def __init__(self, runtime: Runtime, notifier: Notifier) -> None:
        self._runtime = runtime
        self._notifier = notifier
        self._lock = threading.Lock()  # loaded by the workers, read by the loop
        self._states: dict[str, StackState] = {}  # as `status` shows them
        self._last = ""

    def load(self, names: Sequence[str] | None = None) -> None:
        """Each stack's state from the store, by the rule `status` uses (all stacks of the
        config by default)."""
        config = self._runtime.config
        wanted = list(names) if names is not None else [s.name for s in config.stacks]
        with self._runtime.store.read() as session:
            summaries = stack_summaries(session, wanted, [c.value for c in Check])
        with self._lock:
            for summary in summaries:
                self._states[summary.stack] = stack_state(
                    (op.status, op.outcome) for op in summary.latest.values()
                )

    def publish(self, running: int, upcoming: tuple[str, datetime] | None) -> None:
        with self._lock:
            states = list(self._states.values())
        line = status_line(len(self._runtime.config.stacks), running, states, upcoming)
        if line != self._last:
            self._notifier.status(line)
            self._last = line
