"""Scan requests from `driftwarden trigger`, claimed by the running daemon."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from driftwarden.domain.model import AuditAction
from driftwarden.store.audit import AuditChain
from driftwarden.store.models import ScanRequest, utcnow


def request_scan(
    session: Session,
    audit: AuditChain,
    *,
    stack: str,
    checks: Sequence[str] | None,
    actor: str,
    reason: dict[str, Any] | None = None,
) -> ScanRequest:
    """A scan for the daemon (or the distributed scheduler) to claim; `reason` goes into
    its audit event (an audit source says who changed the stack)."""
    request = ScanRequest(
        id=f"rq-{secrets.token_hex(6)}",
        stack=stack,
        checks=list(checks) if checks else None,
        requested_at=utcnow(),
        requested_by=actor,
    )
    session.add(request)
    audit.append(
        session,
        actor=actor,
        action=AuditAction.SCAN_REQUESTED,
        stack=stack,
        details={"request_id": request.id, "checks": request.checks, **(reason or {})},
    )
    return request


def pending_requests(session: Session) -> Sequence[ScanRequest]:
    return session.exec(
        select(ScanRequest)
        .where(col(ScanRequest.claimed_at).is_(None))
        .order_by(col(ScanRequest.requested_at))
    ).all()


def claim(session: Session, request_id: str, claimer: str, when: datetime | None = None) -> bool:
    """Mark a request taken; False if someone else claimed it first (one conditional
    UPDATE, so two daemons on one store never both take it)."""
    claimed = session.connection().execute(
        update(ScanRequest)
        .where(col(ScanRequest.id) == request_id, col(ScanRequest.claimed_at).is_(None))
        .values(claimed_at=when or utcnow(), claimed_by=claimer)
    )
    return claimed.rowcount == 1


def record_request_rejected(
    session: Session, audit: AuditChain, request: ScanRequest, *, actor: str, reason: str
) -> None:
    """A claimed request that will not run (e.g. its stack is not configured)."""
    audit.append(
        session, actor=actor, action=AuditAction.SCAN_REQUEST_REJECTED, stack=request.stack,
        outcome="rejected", details={"request_id": request.id, "reason": reason},
    )  # fmt: skip
