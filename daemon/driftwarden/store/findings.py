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
    DifferenceSource,
    FindingTransition,
    PropertyChange,
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
    new_finding_id,
)
from driftwarden.store.audit import AuditChain
from driftwarden.store.models import Finding, utcnow
from driftwarden.store.state import absorbed_since

_RECORD_FIELDS = tuple(f.name for f in fields(FindingRecord))


def finding_record(finding: Finding) -> FindingRecord:
    """The stored finding as the lifecycle sees it (its attributions read from JSON)."""
    values = {name: getattr(finding, name) for name in _RECORD_FIELDS}
    return FindingRecord(**{**values, "attribution": attribution_from_dict(finding.attribution),
                            "accepted_by": attribution_from_dict(finding.accepted_by)})  # fmt: skip


def _row_values(record: FindingRecord) -> dict[str, Any]:
    """The finding as the findings table keeps it (its attributions as JSON)."""
    values = {name: getattr(record, name) for name in _RECORD_FIELDS}
    attribution, accepted = record.attribution, record.accepted_by
    return {**values, "attribution": attribution.to_dict() if attribution else None,
            "accepted_by": accepted.to_dict() if accepted else None}  # fmt: skip


def open_finding_records(session: Session, stack: str) -> list[FindingRecord]:
    """The stack's open findings (every check), as the lifecycle sees them."""
    rows = session.exec(
        select(Finding).where(Finding.stack == stack, col(Finding.resolved_at).is_(None))
    )
    return [finding_record(row) for row in rows]


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
    open_now: Sequence[FindingRecord],
) -> list[FindingTransition]:
    """Fold one successful check's changes into the stack's open findings `open_now`
    (`open_finding_records`, read once at the start of the check, under the stack's lock;
    the fold keeps to the findings of `check`), write the result and audit each
    transition. Only the rows the fold updates are loaded again, by id."""
    records = list(open_now)
    mine = [record for record in records if record.check == check]
    since = min((record.first_seen for record in mine), default=None)
    seen = CheckSeen(
        stack=stack, check=check, operation_id=operation_id, seen_at=seen_at, changes=changes,
        rate=assess, attributions=attributions or {},
        absorbed=absorbed_since(session, stack, since) if since is not None else {},
    )  # fmt: skip
    result = fold_check(records, seen)
    for record in result.opened:
        session.add(Finding(**_row_values(record)))
    for record in result.updated:
        row = session.get(Finding, record.id)
        if row is None:
            continue  # pruned meanwhile: nothing left to update
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


# The check name of findings that a change of the state raised (a refresh, import or
# edit that accepted a dangerous difference into it).
STATE_CHECK = "state"


def accept_into_state(
    session: Session,
    audit: AuditChain,
    *,
    stack: str,
    change_key: str,
    time: datetime,
    accepted: Sequence[tuple[ResourceChange, PropertyChange, str, str]],
    held: Mapping[tuple[str, str], Any],
    attribution: Attribution,
    actor: str,
) -> list[FindingTransition]:
    """Open a `state` finding for each dangerous difference a change of the state accepted
    (`accepted`: change, property, severity, rule); resolve the open ones whose value the
    state no longer holds (`held`: what this change wrote at each (urn, path); a deleted
    resource holds nothing)."""
    open_rows = list(session.exec(select(Finding).where(
        Finding.stack == stack, Finding.check == STATE_CHECK, col(Finding.resolved_at).is_(None),
    )))  # fmt: skip
    transitions: list[FindingTransition] = []
    known = {(row.urn, row.path) for row in open_rows}
    for row in open_rows:
        key = (row.urn, row.path)
        if (row.urn, "*") in held or (key in held and held[key] != row.actual):
            row.resolved_at, row.ended_as = time, "resolved"
            row.last_operation_id = change_key
            session.add(row)
            transitions.append(finding_record(row).transition("resolved"))
    for change, prop, severity, rule in accepted:
        if (change.urn, prop.path) in known:
            continue
        record = FindingRecord(
            id=new_finding_id(), stack=stack, check=STATE_CHECK, urn=change.urn,
            type=change.type, change=str(change.change), path=prop.path, kind=prop.kind,
            expected=prop.expected, actual=prop.actual, secret=prop.secret,
            source=DifferenceSource.STATE,
            severity=severity, rule=rule, attribution=attribution, first_seen=time,
            last_seen=time, occurrences=1, first_operation_id=change_key,
            last_operation_id=change_key,
        )  # fmt: skip
        session.add(Finding(**_row_values(record)))
        transitions.append(record.transition("opened"))
    for transition in transitions:
        audit.append(session, actor=actor, action=AuditAction.of_transition(transition.kind),
                     stack=stack, outcome=transition.kind, details=transition.details(),
                     time=time)  # fmt: skip
    return transitions
