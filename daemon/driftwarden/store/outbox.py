"""The notification outbox: messages are rows first, deliveries second.

A message is inserted in the same transaction as the finding transition (or failure)
that causes it, so a crash can delay a notification but never lose it. Delivery marks
it `sent`, or retries with exponential backoff until `max_attempts`, then `failed`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from driftwarden.store.audit import AuditChain
from driftwarden.store.models import Notification, utcnow

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
        status="pending", attempts=0, next_attempt_at=now, created_at=now,
    )  # fmt: skip
    session.add(notification)
    return notification


def due(session: Session, now: datetime | None = None, limit: int = 200) -> Sequence[Notification]:
    return session.exec(
        select(Notification)
        .where(
            Notification.status == "pending", col(Notification.next_attempt_at) <= (now or utcnow())
        )
        .order_by(col(Notification.created_at))
        .limit(limit)
    ).all()


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
    details = {
        "notification_id": notification.id, "target": notification.target,
        "event": notification.event, "attempts": notification.attempts,
        "idempotency_key": notification.idempotency_key,
    }  # fmt: skip
    if ok:
        notification.status, notification.sent_at, notification.last_error = "sent", now, None
        audit.append(
            session, actor=actor, action="notification.sent", stack=notification.stack,
            operation_id=notification.operation_id, outcome="sent", details=details,
        )  # fmt: skip
    else:
        notification.last_error = error
        if notification.attempts >= max_attempts:
            notification.status = "failed"
            audit.append(session, actor=actor, action="notification.failed",
                         stack=notification.stack, operation_id=notification.operation_id,
                         outcome="failed", details={**details, "error": error})  # fmt: skip
        else:
            notification.next_attempt_at = now + backoff(notification.attempts)
    session.add(notification)
    return notification


def list_notifications(
    session: Session, *, status: str | None = None, limit: int = 50
) -> Sequence[Notification]:
    query = select(Notification)
    if status is not None:
        query = query.where(Notification.status == status)
    return session.exec(query.order_by(col(Notification.created_at).desc()).limit(limit)).all()
