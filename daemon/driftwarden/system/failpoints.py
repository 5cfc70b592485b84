"""Crash points for the crash-matrix tests: `DRIFTWARDEN_CRASH_AT=<point>` makes the process
kill itself with SIGKILL when it reaches that point, the way a host is lost: no handler,
no `finally`, no flush. Unset (always, outside those tests) a point costs one dict lookup.

`<point>` may end in `#N`: die the N-th time the point is reached (1 by default), so that
a crash can fall in the middle of a run of deliveries or of a second check.
"""

from __future__ import annotations

import os
import signal
import threading

ENV_CRASH_AT = "DRIFTWARDEN_CRASH_AT"

# Every point, where it sits in a scan (tests/crash pick from these).
POINTS = (
    "check.before-engine",  # the operation is recorded `running`; the engine has not started
    "check.after-engine",  # the engine finished; nothing of its result is stored yet
    "check.before-commit",  # the result, findings and notifications are written, uncommitted
    "check.after-commit",  # committed; the next step (remediation, next check) not begun
    "remediation.before-engine",  # the remediation's operation recorded, the engine not started
    "remediation.after-engine",  # the remediation ran; its end is not stored yet
    "delivery.before-send",  # a notification claimed, not yet sent
    "delivery.after-send",  # a notification sent, not yet marked delivered
)
# Points outside a scan's path, each tested on its own.
OTHER_POINTS = (
    "source.before-commit",  # an audit source's batch read and written, uncommitted
    # a remediation's record or step end and its message written, uncommitted
    "remediation.before-commit",
)

_counts: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(point: str) -> None:
    """Die here (SIGKILL) if `DRIFTWARDEN_CRASH_AT` names this point and its count."""
    wanted = os.environ.get(ENV_CRASH_AT)
    if not wanted:
        return
    name, _, nth = wanted.partition("#")
    if name != point:
        return
    with _lock:
        _counts[point] = _counts.get(point, 0) + 1
        reached = _counts[point]
    if reached == (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
