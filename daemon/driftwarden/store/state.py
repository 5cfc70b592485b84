"""The state's own audit trail in the store: what each change of a stack's state wrote
(state_changes, one audit event per change of the state), which changes were audited and
the state each left (state_audits); what a later check needs to know that the state took
a finding's value in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from driftwarden.domain.model import (
    AuditAction,
    OutOfBandAttribution,
    PropertyChange,
    ResourceChange,
    UpdateAttribution,
)
from driftwarden.drift.lifecycle import Absorbed
from driftwarden.store.audit import AuditChain
from driftwarden.store.models import StateAudit, StateChangeRow, utcnow


@dataclass(frozen=True)
class StateChange:
    """One change of a stack's state, to be recorded: what wrote it and what it wrote."""

    key: str  # the update's key, or edit@<time>
    cause: str  # the update's kind (update, refresh, import, …), or "edit"
    actor: str
    time: datetime
    digest: str  # the state it left
    changes: Sequence[ResourceChange]
    ratings: dict[tuple[str, str], tuple[str, str]]  # (urn, path) -> (severity, rule)

    @property
    def is_edit(self) -> bool:
        return self.cause == "edit"


def audited(session: Session, stack: str) -> dict[str, str]:
    """The stack's changes of the state already audited: key -> the state's digest."""
    rows = session.exec(select(StateAudit).where(StateAudit.stack == stack))
    return {row.change_key: row.digest for row in rows}


def record_state_change(
    session: Session, audit: AuditChain, stack: str, change: StateChange
) -> list[StateChangeRow]:
    """Audit one change of the state (its counts and top severity in the chain) and store
    each property it wrote."""
    rows: list[StateChangeRow] = []
    for resource in change.changes:
        properties = resource.properties or (PropertyChange("", "", None, None, False),)
        for prop in properties:
            severity, rule = change.ratings.get((resource.urn, prop.path), (None, None))
            rows.append(StateChangeRow(
                stack=stack, change_key=change.key, cause=change.cause, actor=change.actor,
                time=change.time, urn=resource.urn, type=resource.type,
                change=str(resource.change), path=prop.path, kind=prop.kind,
                expected=prop.expected, actual=prop.actual, secret=prop.secret,
                severity=severity, rule=rule,
            ))  # fmt: skip
    counts: dict[str, int] = {}
    for resource in change.changes:
        counts[str(resource.change)] = counts.get(str(resource.change), 0) + 1
    rated = [row for row in rows if row.severity]
    top = max(rated, key=lambda row: _RANK.get(row.severity or "", -1), default=None)
    event = audit.append(
        session, actor=change.actor,
        action=AuditAction.STATE_EDITED if change.is_edit else AuditAction.STATE_CHANGED,
        stack=stack, outcome=change.cause, time=change.time,
        details={"change_key": change.key, "cause": change.cause, "digest": change.digest,
                 "resources": counts, "properties": len(rows),
                 "severity": top.severity if top else None,
                 "rule": top.rule if top else None},
    )  # fmt: skip
    for row in rows:
        row.seq = event.seq
        session.add(row)
    session.add(StateAudit(stack=stack, change_key=change.key, digest=change.digest,
                           recorded_at=utcnow()))  # fmt: skip
    return rows


_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def state_changes(
    session: Session, stack: str, *, since: datetime | None = None, limit: int = 500
) -> list[StateChangeRow]:
    """The stack's recorded changes of the state, newest first."""
    query = select(StateChangeRow).where(StateChangeRow.stack == stack)
    if since is not None:
        query = query.where(col(StateChangeRow.time) >= since)
    newest = query.order_by(col(StateChangeRow.time).desc(), col(StateChangeRow.id).desc())
    return list(session.exec(newest.limit(limit)))


def stacks_with_changes(session: Session) -> list[str]:
    return list(session.exec(select(StateChangeRow.stack).distinct()))


def absorbed_since(
    session: Session, stack: str, since: datetime
) -> dict[tuple[str, str], Absorbed]:
    """What changes of the state wrote at each (urn, path) since `since` (the newest
    wins), with whose change it was: a finding that vanished because of one was accepted."""
    found: dict[tuple[str, str], Absorbed] = {}
    for row in state_changes(session, stack, since=since, limit=10_000):
        key = (row.urn, row.path)
        if key not in found:
            found[key] = Absorbed(row.actual, row.secret, acceptance(row))
    return found


def acceptance(row: StateChangeRow) -> UpdateAttribution | OutOfBandAttribution:
    """Whose change of the state wrote `row`: the update (kind, actor, time), or an edit
    that no update accounts for."""
    if row.cause == "edit":
        return OutOfBandAttribution(
            f"the state was edited outside any update ({row.time:%Y-%m-%dT%H:%M:%SZ})"
        )
    return UpdateAttribution(row.change_key, row.cause, row.actor, "succeeded",
                             row.time.isoformat(), None)  # fmt: skip


def change_view(row: StateChangeRow) -> dict[str, Any]:
    return {
        "stack": row.stack, "change_key": row.change_key, "cause": row.cause, "actor": row.actor,
        "time": row.time.isoformat(), "urn": row.urn, "type": row.type, "change": row.change,
        "path": row.path, "kind": row.kind, "before": row.expected, "after": row.actual,
        "secret": row.secret, "severity": row.severity, "rule": row.rule,
    }  # fmt: skip
