"""`db prune`: the store's one bulk delete, and its audit event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlmodel import Session, col

from driftwarden.domain.model import AuditAction, OperationStatus
from driftwarden.store.audit import AuditChain
from driftwarden.store.models import Finding, Operation, PropertyChangeRow, ResourceChangeRow


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
        Operation.status != OperationStatus.RUNNING,
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


def record_prune(
    session: Session, audit: AuditChain, *, actor: str, older_than: datetime, result: PruneResult
) -> None:
    """Append `store.pruned`: what `prune` deleted, and its cutoff."""
    audit.append(
        session,
        actor=actor,
        action=AuditAction.STORE_PRUNED,
        details={"older_than": older_than.isoformat(), "operations": result.operations,
                 "resource_changes": result.resource_changes,
                 "property_changes": result.property_changes},
    )  # fmt: skip
