"""One engine operation per stack at a time, across processes (CLI scans and the daemon)
and, with a PostgreSQL store, across hosts.

On SQLite: an exclusive `flock` on <state_dir>/locks/<stack>.lock, released by the
kernel when the holder dies. On PostgreSQL: a session advisory lock (store/locks.py),
released by the server when the holder's session ends. Either way a crashed scan never
leaves a stack locked.
"""

from __future__ import annotations

import fcntl
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from driftwarden.domain.errors import DriftwardenError
from driftwarden.store.db import Store
from driftwarden.store.locks import try_stack_lock, uses_database_locks


class StackBusyError(DriftwardenError):
    """Another process is running an engine operation on this stack."""


@contextmanager
def stack_lock(
    lock_dir: Path,
    stack: str,
    *,
    store: Store | None = None,
    wait: bool = True,
    on_wait: Callable[[], None] | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[None]:
    """Hold `stack`'s lock for the block: in the database when `store` is on PostgreSQL,
    else a flock in `lock_dir`. Busy: StackBusyError without `wait`, else `on_wait()`
    and poll until it is free or `cancel` is set."""
    if store is not None and uses_database_locks(store):
        take: Callable[[], Callable[[], None] | None] = functools.partial(
            _take_database, store, stack
        )
    else:
        take = functools.partial(_take_flock, lock_dir, stack)
    release = take()
    if release is None:
        if not wait:
            raise StackBusyError(
                f"stack {stack!r} is being scanned by another driftwarden process",
                hint="wait for it, or drop --no-wait to wait automatically",
            )
        if on_wait is not None:
            on_wait()
        while release is None:  # a blocking wait cannot be interrupted cleanly: poll
            if cancel is not None and cancel.wait(_POLL_SECONDS):
                raise StackBusyError(
                    f"stopped while waiting for stack {stack!r}", hint="nothing to do"
                )
            if cancel is None:
                time.sleep(_POLL_SECONDS)
            release = take()
    try:
        yield
    finally:
        release()


_POLL_SECONDS = 0.25


def _take_flock(lock_dir: Path, stack: str) -> Callable[[], None] | None:
    lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"{stack}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return functools.partial(os.close, fd)  # closing releases the lock


def _take_database(store: Store, stack: str) -> Callable[[], None] | None:
    held = try_stack_lock(store, stack)
    return None if held is None else held.release
