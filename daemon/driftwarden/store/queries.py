"""Read models for `status`, `history` and `drift show`: reads only (`db prune`, the one
writer that was here, is store/prune.py).

Written against the indexes in models.py: the latest operation of a (stack, check) is one
index seek, whatever the size of the history.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Select,
    String,
    Table,
    bindparam,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlmodel import Session, col

from driftwarden.domain.model import (
    OperationStatus,
)
from driftwarden.store.models import (
    AuditEvent,
    Finding,
    Operation,
)


@dataclass
class LatestOperation:
    id: str
    kind: str
    status: str
    outcome: str | None
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    host: str  # where it ran (or runs): a worker's host name


@dataclass
class StackSummary:
    stack: str
    latest: dict[str, LatestOperation] = field(default_factory=dict)  # by check
    open_findings: int = 0

    @property
    def last_scan(self) -> datetime | None:
        times = [op.started_at for op in self.latest.values()]
        return max(times) if times else None


def stack_summaries(
    session: Session, stacks: Sequence[str], kinds: Sequence[str]
) -> list[StackSummary]:
    summaries = {name: StackSummary(name) for name in stacks}
    if not stacks:
        return []
    dialect = session.connection().dialect.name
    # Two statements, each built once: the stacks and kinds travel as list parameters, so
    # neither building nor compiling them grows with the fleet (500 stacks used to cost
    # ~300 ms of SQLAlchemy expression building, and 500 expanded IN parameters ~15 ms).
    rows = session.execute(
        _latest_operations(dialect),
        {"stacks": _list_param(dialect, stacks), "kinds": _list_param(dialect, kinds)},
    )
    for row in rows:
        summaries[row.stack].latest[row.kind] = LatestOperation(
            row.id,
            row.kind,
            row.status,
            row.outcome,
            row.started_at,
            row.finished_at,
            row.error,
            row.host,
        )
    counts = session.execute(_open_counts(dialect), {"stacks": _list_param(dialect, stacks)})
    for stack, count in counts:
        summaries[stack].open_findings = int(count)
    return [summaries[name] for name in stacks]


def _list_param(dialect: str, values: Sequence[str]) -> Any:
    return list(values) if dialect == "postgresql" else json.dumps(list(values))


def _list_table(dialect: str, name: str) -> TableValuedAlias:
    """A bound list of strings as a one-column table (`value`): PostgreSQL's unnest of a
    text array, SQLite's json_each of a JSON array (SQLite's JSON functions are built in
    since 3.38)."""
    if dialect == "postgresql":
        array = bindparam(name, type_=ARRAY(String()))
        return func.unnest(array).table_valued("value").render_derived(name=name)
    return func.json_each(bindparam(name, type_=String())).table_valued("value").alias(name)


@functools.cache
def _latest_operations(dialect: str) -> Select[Any]:
    """The newest operation of every (stack, kind) in the :stacks x :kinds lists; a
    (stack, kind) without any operation yields no row.

    Each pair is one backward seek on ix_operations_stack_kind_started: a LATERAL join on
    PostgreSQL; on SQLite (no LATERAL) a correlated scalar subquery for the id, then a
    primary-key lookup.
    """
    ops: Table = Operation.__table__  # type: ignore[attr-defined]
    stacks, kinds = _list_table(dialect, "stacks"), _list_table(dialect, "kinds")
    columns = ("id", "stack", "kind", "status", "outcome", "started_at", "finished_at", "error",
               "host")  # fmt: skip
    newest_first = ops.c.started_at.desc()
    pairs = stacks.join(kinds, true())
    if dialect == "postgresql":
        latest = (
            select(*(ops.c[name] for name in columns))
            .where(ops.c.stack == stacks.c.value, ops.c.kind == kinds.c.value)
            .order_by(newest_first)
            .limit(1)
            .lateral("latest")
        )
        return select(latest).select_from(pairs.join(latest, true()))
    inner = ops.alias("newest")
    latest_id = (
        select(inner.c.id)
        .where(inner.c.stack == stacks.c.value, inner.c.kind == kinds.c.value)
        .order_by(inner.c.started_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    return select(*(ops.c[name] for name in columns)).where(
        ops.c.id.in_(select(latest_id).select_from(pairs))
    )


@functools.cache
def _open_counts(dialect: str) -> Select[Any]:
    """Open findings per stack of the :stacks list (from the partial ux_findings_open)."""
    findings: Table = Finding.__table__  # type: ignore[attr-defined]
    stacks = _list_table(dialect, "stacks")
    return (
        select(findings.c.stack, func.count())
        .where(findings.c.resolved_at.is_(None), findings.c.stack.in_(select(stacks.c.value)))
        .group_by(findings.c.stack)
    )


def history(session: Session, *, stack: str | None = None, limit: int = 50) -> Sequence[Operation]:
    query = select(Operation)
    if stack is not None:
        query = query.where(col(Operation.stack) == stack)
    query = query.order_by(col(Operation.started_at).desc()).limit(limit)
    return session.execute(query).scalars().all()


def open_findings(session: Session, stack: str) -> Sequence[Finding]:
    return (
        session.execute(
            select(Finding)
            .where(col(Finding.stack) == stack, col(Finding.resolved_at).is_(None))
            .order_by(col(Finding.check), col(Finding.urn), col(Finding.path))
        )
        .scalars()
        .all()
    )


def recent_statuses(session: Session, stack: str, kind: str, *, limit: int) -> list[str]:
    """Statuses of the stack's latest operations of one kind, newest first."""
    rows = session.execute(
        select(Operation.status)  # type: ignore[call-overload]
        .where(col(Operation.stack) == stack, col(Operation.kind) == kind)
        .order_by(col(Operation.started_at).desc())
        .limit(limit)
    )
    return [str(status) for (status,) in rows]


def recent_outcomes(session: Session, stack: str, kind: str, *, limit: int) -> list[str | None]:
    """Outcomes of the stack's latest finished operations of one kind, newest first."""
    rows = session.execute(
        select(Operation.outcome)  # type: ignore[call-overload]
        .where(
            col(Operation.stack) == stack,
            col(Operation.kind) == kind,
            col(Operation.status) == OperationStatus.SUCCEEDED,
        )
        .order_by(col(Operation.started_at).desc())
        .limit(limit)
    )
    return [outcome for (outcome,) in rows]


def audit_log(
    session: Session,
    *,
    stack: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[AuditEvent]:
    """The audit trail as a timeline, newest first: driftwarden's own operations, the
    stacks' updates, finding transitions, remediations and notifications. `actor` matches
    part of the actor; `action` an action or its family (`finding`: `finding.opened`, …)."""
    query = select(AuditEvent)
    if stack is not None:
        query = query.where(col(AuditEvent.stack) == stack)
    if since is not None:
        query = query.where(col(AuditEvent.time) >= since)
    if until is not None:
        query = query.where(col(AuditEvent.time) < until)
    if actor is not None:
        query = query.where(col(AuditEvent.actor).contains(actor))
    if action:
        family = action.rstrip(".")
        query = query.where(
            or_(col(AuditEvent.action) == family, col(AuditEvent.action).like(f"{family}.%"))
        )
    query = query.order_by(col(AuditEvent.seq).desc()).offset(offset).limit(limit)
    return session.execute(query).scalars().all()
