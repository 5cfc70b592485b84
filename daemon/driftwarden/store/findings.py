"""Findings in the store: each check's fold (drift.lifecycle) written, each transition
audited; and the approval marks of remediation."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from driftwarden.domain.model import (
    Attribution,
    AuditAction,
    FindingTransition,
    ResourceChange,
    TransitionKind,
    attribution_from_dict,
)
from driftwarden.drift.lifecycle import (
    CheckSeen,
    FindingRecord,
    Observation,
    Rating,
    fold_check,
)
from driftwarden.store.audit import AuditChain
from driftwarden.store.models import Finding, utcnow

_RECORD_FIELDS = tuple(f.name for f in fields(FindingRecord))


def finding_record(finding: Finding) -> FindingRecord:
    """The stored finding as the lifecycle sees it (its attribution read from JSON)."""
    values = {name: getattr(finding, name) for name in _RECORD_FIELDS}
    return FindingRecord(**{**values, "attribution": attribution_from_dict(finding.attribution)})


def _row_values(record: FindingRecord) -> dict[str, Any]:
    """The finding as the findings table keeps it (its attribution as JSON)."""
    values = {name: getattr(record, name) for name in _RECORD_FIELDS}
    attribution = record.attribution
    return {**values, "attribution": attribution.to_dict() if attribution else None}


def apply_check(
    session: Session,
    audit: AuditChain,
    *,
    stack: str,
    check: str,
    operation_id: str,
    actor: str,
    changes: Sequence[ResourceChange],
    seen_at: datetime,
    assess: Callable[[Observation], Rating | None] | None = None,
    attributions: Mapping[str, Attribution] | None = None,
) -> list[FindingTransition]:
    """Fold one successful check's changes into the stack's open findings (the fold keeps
    to the findings of `check`), write the result and audit each transition."""
    rows = {
        row.id: row
        for row in session.exec(
            select(Finding).where(Finding.stack == stack, col(Finding.resolved_at).is_(None))
        )
    }
    seen = CheckSeen(
        stack=stack, check=check, operation_id=operation_id, seen_at=seen_at, changes=changes,
        rate=assess, attributions=attributions or {},
    )  # fmt: skip
    result = fold_check((finding_record(row) for row in rows.values()), seen)
    for record in result.opened:
        session.add(Finding(**_row_values(record)))
    for record in result.updated:
        row = rows[record.id]
        for name, value in _row_values(record).items():
            if getattr(row, name) != value:
                setattr(row, name, value)
        session.add(row)
    for transition in result.transitions:
        audit.append(
            session,
            actor=actor,
            action=AuditAction.of_transition(transition.kind),
            stack=stack,
            operation_id=operation_id,
            outcome=transition.kind,
            details=transition.details(),
            time=seen_at,
        )
    return list(result.transitions)


def transition_of(kind: TransitionKind, finding: Finding) -> FindingTransition:
    """The stored finding as a transition of `kind` (a digest lists open ones as `opened`)."""
    return finding_record(finding).transition(kind)


def request_approval(
    session: Session, audit: AuditChain, stack: str, check: str, *, operation_id: str,
    actor: str, mode: str,
) -> list[str]:  # fmt: skip
    """Mark the stack's open findings of `check` as waiting for approval; the ids marked
    now (none when all were marked before), audited as `remediation.needs_approval`."""
    findings = session.exec(
        select(Finding).where(
            Finding.stack == stack, Finding.check == check, col(Finding.resolved_at).is_(None),
        )
    ).all()  # fmt: skip
    fresh = [f for f in findings if f.approval_requested_at is None]
    now = utcnow()
    for finding in fresh:
        finding.approval_requested_at = now
        session.add(finding)
    if fresh:
        audit.append(
            session, actor=actor, action=AuditAction.REMEDIATION_NEEDS_APPROVAL, stack=stack,
            operation_id=operation_id, outcome="needs_approval",
            details={"mode": mode, "findings": [f.id for f in fresh]},
        )  # fmt: skip
    return [f.id for f in fresh]
