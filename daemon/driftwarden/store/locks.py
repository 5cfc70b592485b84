"""A stack lock in the database, for stores on PostgreSQL: a session advisory lock held
on a connection of its own for as long as the stack's engine operation runs. Every host
sharing the store sees it, unlike a flock on one host's state directory; and the server
releases it when the holder's session ends, however it ends (exit, crash, a host lost:
once its connection is gone), so a dead holder never leaves a stack locked.

The key is the first 8 bytes of SHA-256 over the stack's name, in a namespace of its own
so that other users of advisory locks in the same database are not disturbed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy

from driftwarden.store.db import Store

_NAMESPACE = b"driftwarden:stack-lock:"


def lock_key(stack: str) -> int:
    """The advisory lock's bigint key of `stack`."""
    digest = hashlib.sha256(_NAMESPACE + stack.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass
class HeldLock:
    """A stack lock held on its own connection; `release` gives it back."""

    stack: str
    connection: sqlalchemy.Connection

    def release(self) -> None:
        try:
            self.connection.execute(
                sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(self.stack)}
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
    connection = store.unpooled().connect()
    try:
        taken = connection.execute(
            sqlalchemy.text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(stack)}
        ).scalar_one()
        connection.commit()  # a session lock outlives the transaction; end the latter
    except BaseException:
        connection.close()
        raise
    if not taken:
        connection.close()
        return None
    return HeldLock(stack, connection)
