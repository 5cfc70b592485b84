"""One engine operation per stack at a time, across processes (CLI scans and the daemon).

An exclusive `flock` on <state_dir>/locks/<stack>.lock: released by the kernel when the
holder dies, so a crashed scan never leaves a stack locked.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from driftwarden.domain.errors import DriftwardenError


class StackBusyError(DriftwardenError):
    """Another process is running an engine operation on this stack."""


@contextmanager
def stack_lock(
    lock_dir: Path,
    stack: str,
    *,
    wait: bool = True,
    on_wait: Callable[[], None] | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[None]:
    lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"{stack}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise StackBusyError(
                    f"stack {stack!r} is being scanned by another driftwarden process",
                    hint="wait for it, or drop --no-wait to wait automatically",
                ) from None
            if on_wait is not None:
                on_wait()
            while True:  # blocking flock cannot be interrupted cleanly: poll instead
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if cancel is not None and cancel.wait(0.25):
                        raise StackBusyError(
                            f"stopped while waiting for stack {stack!r}", hint="nothing to do"
                        ) from None
                    if cancel is None:
                        time.sleep(0.25)
        yield
    finally:
        os.close(fd)  # closing releases the lock
