"""Locks in the database, for stores on PostgreSQL. A stack lock is a session advisory
lock held on a connection of its own for as long as the stack's engine operation runs.
Every host sharing the store sees it, unlike a flock on one host's state directory; and the server
releases it when the holder's session ends, however it ends (exit, crash, a host lost:
once its connection is gone), so a dead holder never leaves a stack locked.

The scheduler's lock (distributed mode) is the same kind: whoever holds it is the one
scheduler of the fleet, until its session ends.

A key is the first 8 bytes of SHA-256 over a name, in a namespace of driftwarden's own so
that other users of advisory locks in the same database are not disturbed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy

from driftwarden.store.db import Store
from driftwarden.store.operations import interrupt_if_running, running_operations

_STACK_NAMESPACE = "driftwarden:stack-lock:"
SCHEDULER_LOCK = "driftwarden:scheduler"  # a name of its own namespace


def lock_key(stack: str) -> int:
    """The advisory lock's bigint key of `stack`."""
    return named_lock_key(_STACK_NAMESPACE + stack)


def named_lock_key(name: str) -> int:
    """The bigint key of a lock that is not a stack's (scheduler, queue schema)."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass
class HeldLock:
    """A lock held on its own connection; `release` gives it back."""

    key: int
    connection: sqlalchemy.Connection

    def alive(self) -> bool:
        """Whether the session holding the lock still answers (if not, the lock is gone)."""
        try:
            self.connection.execute(sqlalchemy.text("SELECT 1"))
            self.connection.commit()
        except sqlalchemy.exc.DBAPIError:
            return False
        return True

    def release(self) -> None:
        try:
            self.connection.execute(
                sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key}
            )
            self.connection.commit()
        except sqlalchemy.exc.DBAPIError:
            pass  # the session is broken, and with it the lock gone
        finally:
            self.connection.close()


def uses_database_locks(store: Store) -> bool:
    """Whether stack locks live in the database (PostgreSQL) rather than in flocks."""
    return store.dialect == "postgresql"


def try_stack_lock(store: Store, stack: str) -> HeldLock | None:
    """The lock of `stack` if no session anywhere holds it, else None (never waits)."""
    return _try_lock(store, lock_key(stack))


def try_scheduler_lock(store: Store) -> HeldLock | None:
    """The fleet's scheduler lock if no session holds it, else None (never waits)."""
    return _try_lock(store, named_lock_key(SCHEDULER_LOCK))


def _try_lock(store: Store, key: int) -> HeldLock | None:
    connection = store.unpooled().connect()
    try:
        taken = connection.execute(
            sqlalchemy.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
        ).scalar_one()
        connection.commit()  # a session lock outlives the transaction; end the latter
    except BaseException:
        connection.close()
        raise
    if not taken:
        connection.close()
        return None
    return HeldLock(key, connection)


def recover_orphaned(store: Store, actor: str) -> list[str]:
    """Operations recorded `running` whose stack lock is free have lost their holder (a
    worker killed, a host lost: its session ended and the server freed the lock; a live
    run holds its stack's lock from before it is recorded until after its end is). They
    become `interrupted`; the ids are returned. Each is re-read under its lock, so a run
    that ended meanwhile is left as it ended."""
    with store.read() as session:
        running = running_operations(session)
    recovered = []
    for operation_id, stack in running:
        held = try_stack_lock(store, stack)
        if held is None:
            continue  # its holder lives
        try:
            with store.write() as session:
                if interrupt_if_running(
                    session, store.audit, actor, operation_id,
                    "the worker running it was lost (its stack lock was freed mid-run)",
                ):  # fmt: skip
                    recovered.append(operation_id)
        finally:
            held.release()
    return recovered
