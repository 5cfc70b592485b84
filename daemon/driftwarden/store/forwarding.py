"""The forwarders' cursors: the next events to send to a destination, and how far it has
received them. A cursor only moves forward, after delivery: at least once, in order."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import select

from driftwarden.store.audit import ChainEvent
from driftwarden.store.digests import store_events
from driftwarden.store.models import ForwardCursor, utcnow

if TYPE_CHECKING:
    from driftwarden.store.db import Store

ERROR_CHARS = 500


def cursor(store: Store, name: str) -> ForwardCursor:
    with store.read() as session:
        row = session.get(ForwardCursor, name)
        return ForwardCursor(name=name) if row is None else ForwardCursor(**row.model_dump())


def pending(store: Store, after_seq: int, limit: int) -> list[ChainEvent]:
    """Up to `limit` events after `after_seq`, in seq order."""
    return list(store_events(store, after_seq, limit))


def delivered(store: Store, name: str, seq: int, when: datetime | None = None) -> None:
    """Every event up to `seq` reached `name`."""
    with store.write() as session:
        row = session.get(ForwardCursor, name) or ForwardCursor(name=name)
        row.seq = max(row.seq, seq)
        row.delivered_at = when or utcnow()
        row.failures, row.last_error = 0, None
        session.add(row)


def failed(store: Store, name: str, error: str) -> int:
    """A failed attempt; how many in a row."""
    with store.write() as session:
        row = session.get(ForwardCursor, name) or ForwardCursor(name=name)
        row.failures += 1
        row.last_error = error[:ERROR_CHARS]
        session.add(row)
        return row.failures


def cursors(store: Store) -> list[ForwardCursor]:
    with store.read() as session:
        return [ForwardCursor(**row.model_dump()) for row in session.exec(select(ForwardCursor))]
