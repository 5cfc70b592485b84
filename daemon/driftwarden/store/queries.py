"""Read models for `status`, `history` and `drift show`, and `db prune`.

Written against the indexes in models.py: the latest operation of a (stack, check) is one
index seek, whatever the size of the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from driftwarden.store.models import (
    Finding,
    Operation,
    PropertyChangeRow,
    ResourceChangeRow,
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
    latest_ids = []
    for name in stacks:
        for kind in kinds:
            latest_ids.append(
                select(Operation.id)  # type: ignore[call-overload]
                .where(Operation.stack == name, Operation.kind == kind)
                .order_by(col(Operation.started_at).desc())
                .limit(1)
                .scalar_subquery()
            )
    # One round trip: each scalar subquery is an index seek on (stack, kind, started_at).
    for chunk in _chunks(latest_ids, 200):
        rows = session.execute(
            select(
                Operation.id, Operation.stack, Operation.kind, Operation.status,  # type: ignore[call-overload]
                Operation.outcome, Operation.started_at, Operation.finished_at, Operation.error,
            ).where(col(Operation.id).in_(chunk))
        )  # fmt: skip
        for row in rows:
            summaries[row.stack].latest[row.kind] = LatestOperation(
                row.id,
                row.kind,
                row.status,
                row.outcome,
                row.started_at,
                row.finished_at,
                row.error,
            )
    counts = session.execute(
        select(Finding.stack, func.count())  # type: ignore[call-overload]
        .where(col(Finding.resolved_at).is_(None), col(Finding.stack).in_(list(stacks)))
        .group_by(Finding.stack)
    )
    for stack, count in counts:
        summaries[stack].open_findings = int(count)
    return [summaries[name] for name in stacks]


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


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


@dataclass
class PruneResult:
    operations: int
    resource_changes: int
    property_changes: int


def prune(session: Session, *, older_than: datetime) -> PruneResult:
    """Delete finished operations (and their changes) that started before `older_than`.

    Never audit events, never running operations, and never an operation an open
    finding still points at (its first or last sighting).
    """
    keep = (
        select(Finding.first_operation_id)  # type: ignore[call-overload]
        .where(col(Finding.resolved_at).is_(None))
        .union(
            select(Finding.last_operation_id).where(col(Finding.resolved_at).is_(None))  # type: ignore[call-overload]
        )
    )
    victims = select(Operation.id).where(  # type: ignore[call-overload]
        col(Operation.started_at) < older_than,
        Operation.status != "running",
        col(Operation.id).not_in(keep),
    )
    changes = select(ResourceChangeRow.id).where(  # type: ignore[call-overload]
        col(ResourceChangeRow.operation_id).in_(victims)
    )
    connection = session.connection()  # Core: rowcount of each DELETE
    props = connection.execute(
        delete(PropertyChangeRow).where(col(PropertyChangeRow.resource_change_id).in_(changes))
    ).rowcount
    resources = connection.execute(
        delete(ResourceChangeRow).where(col(ResourceChangeRow.operation_id).in_(victims))
    ).rowcount
    operations = connection.execute(
        delete(Operation).where(col(Operation.id).in_(victims))
    ).rowcount
    return PruneResult(operations, resources, props)
