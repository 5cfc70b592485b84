"""Stack updates (from the backend's history) into the audit chain, each exactly once."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from driftwarden.domain.model import STACK_UPDATE_ACTION_PREFIX, StackUpdate
from driftwarden.store.audit import AuditChain
from driftwarden.store.models import AuditEvent, HistoryStamp, IngestedUpdate, utcnow


def record_updates(
    session: Session, audit: AuditChain, stack: str, updates: Sequence[StackUpdate]
) -> int:
    """Append `stack.<kind>` events for updates not seen before; returns how many.

    They are recorded oldest first so the chain reads in the order things happened.
    """
    known = set(
        session.exec(select(IngestedUpdate.update_key).where(IngestedUpdate.stack == stack)).all()
    )
    new = [u for u in updates if u.key not in known]
    for update in sorted(new, key=lambda u: u.start_time):
        event = audit.append(
            session, actor=update.actor, action=update.action, stack=stack,
            outcome=update.result, details=update.details(),
        )  # fmt: skip
        session.add(IngestedUpdate(stack=stack, update_key=update.key, seq=event.seq,
                                   recorded_at=utcnow()))  # fmt: skip
    return len(new)


def recorded_updates(session: Session, stack: str) -> list[StackUpdate]:
    """The stack's recorded updates (`stack.update`, `stack.refresh`, …), oldest first."""
    events = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.stack == stack,
            col(AuditEvent.action).like(f"{STACK_UPDATE_ACTION_PREFIX}%"),
        )
        .order_by(col(AuditEvent.seq))
    ).all()
    updates = (StackUpdate.from_details(event.details) for event in events)
    return [update for update in updates if update is not None]


def ingested_history_stamp(session: Session, stack: str) -> str | None:
    row = session.get(HistoryStamp, stack)
    return None if row is None else row.stamp


def record_history_stamp(session: Session, stack: str, stamp: str) -> None:
    row = session.get(HistoryStamp, stack) or HistoryStamp(stack=stack, stamp=stamp,
                                                           recorded_at=utcnow())  # fmt: skip
    row.stamp, row.recorded_at = stamp, utcnow()
    session.add(row)
