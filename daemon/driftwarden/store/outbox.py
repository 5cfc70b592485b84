"""The notification outbox: messages are rows first, deliveries second.

A message is inserted in the same transaction as the finding transition (or failure)
that causes it, so a crash can delay a notification but never lose it. Delivery marks
it `sent`, or retries with exponential backoff until `max_attempts`, then `failed`.
Each attempt first claims its message, so concurrent senders never send it twice.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from driftwarden.domain.model import AuditAction, NotificationStatus
from driftwarden.store.audit import AuditChain
from driftwarden.store.models import Notification, utcnow
from driftwarden.system.processes import pid_alive

RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 600.0


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS))


def enqueue(
    session: Session,
    *,
    key: str,
    target: str,
    event: str,
    title: str,
    markdown: str,
    text: str,
    stack: str | None = None,
    operation_id: str | None = None,
    now: datetime | None = None,
) -> Notification | None:
    """Queue one message; None when a message with this idempotency key exists already."""
    if session.exec(select(Notification.id).where(Notification.idempotency_key == key)).first():
        return None
    now = now or utcnow()
    notification = Notification(
        id=f"nt-{secrets.token_hex(8)}", idempotency_key=key, target=target, event=event,
        stack=stack, operation_id=operation_id, title=title, markdown=markdown, text=text,
        status=NotificationStatus.PENDING, attempts=0, next_attempt_at=now, created_at=now,
    )  # fmt: skip
    session.add(notification)
    return notification


def sender_id() -> str:
    """Who claims a message: this process on this host."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _claimant_gone(claimant: str | None) -> bool:
    """A claim by a process of this host that no longer runs (a sender killed mid-attempt).
    Claims of other hosts are left to expire: whether they live cannot be told here."""
    if not claimant:
        return False
    host, _, pid = claimant.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))


def due(session: Session, now: datetime | None = None, limit: int = 200) -> list[Notification]:
    """Pending messages whose attempt is due, or whose claimant died mid-attempt."""
    now = now or utcnow()
    rows = session.exec(
        select(Notification)
        .where(
            Notification.status == NotificationStatus.PENDING,
            or_(
                col(Notification.next_attempt_at) <= now,
                col(Notification.claimed_by).is_not(None),
            ),
        )
        .order_by(col(Notification.created_at))
        .limit(limit)
    ).all()
    return [row for row in rows if row.next_attempt_at <= now or _claimant_gone(row.claimed_by)]


def claim(
    session: Session, notification: Notification, *, lease: timedelta, now: datetime | None = None
) -> bool:
    """Take a due message (as `due` returned it) for one delivery attempt; False if
    another sender has it.

    One conditional UPDATE pushes `next_attempt_at` past the attempt (`lease`) and names
    this sender, so a second sender (the daemon's, a `scan`, `notify send`) skips the
    message instead of sending it twice. A sender killed mid-attempt only delays it: its
    claim is taken over at once on the same host, and expires after `lease` elsewhere.
    """
    now = now or utcnow()
    free = col(Notification.next_attempt_at) <= now
    if _claimant_gone(notification.claimed_by):
        free = or_(free, col(Notification.claimed_by) == notification.claimed_by)
    claimed = session.connection().execute(
        update(Notification)
        .where(
            col(Notification.id) == notification.id,
            col(Notification.status) == NotificationStatus.PENDING,
            free,
        )
        .values(next_attempt_at=now + lease, claimed_by=sender_id())
    )
    return claimed.rowcount == 1


def record_attempt(
    session: Session,
    audit: AuditChain,
    notification_id: str,
    *,
    ok: bool,
    error: str | None,
    max_attempts: int,
    actor: str,
    now: datetime | None = None,
) -> Notification:
    notification = session.get(Notification, notification_id)
    if notification is None:
        raise LookupError(f"no notification {notification_id}")
    now = now or utcnow()
    notification.attempts += 1
    notification.claimed_by = None
    details = {
        "notification_id": notification.id, "target": notification.target,
        "event": notification.event, "attempts": notification.attempts,
        "idempotency_key": notification.idempotency_key,
    }  # fmt: skip
    if ok:
        notification.status, notification.sent_at, notification.last_error = (
            NotificationStatus.SENT,
            now,
            None,
        )
        audit.append(
            session, actor=actor, action=AuditAction.NOTIFICATION_SENT, stack=notification.stack,
            operation_id=notification.operation_id, outcome="sent", details=details,
        )  # fmt: skip
    else:
        notification.last_error = error
        if notification.attempts >= max_attempts:
            notification.status = NotificationStatus.FAILED
            audit.append(session, actor=actor, action=AuditAction.NOTIFICATION_FAILED,
                         stack=notification.stack, operation_id=notification.operation_id,
                         outcome="failed", details={**details, "error": error})  # fmt: skip
        else:
            notification.next_attempt_at = now + backoff(notification.attempts)
    session.add(notification)
    return notification


def record_test_message(
    session: Session, audit: AuditChain, *, actor: str, target: str, sent: bool,
    error: str | None,
) -> None:  # fmt: skip
    """Append `notification.test`: a test message (`notify test`) sent to `target`, or not."""
    audit.append(session, actor=actor, action=AuditAction.NOTIFICATION_TEST,
                 outcome="sent" if sent else "failed",
                 details={"target": target, "error": error})  # fmt: skip


def list_notifications(
    session: Session, *, status: str | None = None, limit: int = 50
) -> Sequence[Notification]:
    query = select(Notification)
    if status is not None:
        query = query.where(Notification.status == status)
    return session.exec(query.order_by(col(Notification.created_at).desc()).limit(limit)).all()
