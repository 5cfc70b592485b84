"""Remediation in the audit chain: each of its steps, with who took it."""

from __future__ import annotations

from sqlmodel import Session

from driftwarden.domain.model import AuditAction
from driftwarden.store.audit import AuditChain


def record_remediation(
    session: Session, audit: AuditChain, *, actor: str, stack: str, operation_id: str | None,
    action: AuditAction, details: dict[str, object],
) -> None:  # fmt: skip
    """Append a step's `remediation.…` action (planned, refused, declined, approved,
    succeeded, incomplete) for the operation of that step."""
    audit.append(session, actor=actor, action=action, stack=stack,
                 operation_id=operation_id, details=details)  # fmt: skip
