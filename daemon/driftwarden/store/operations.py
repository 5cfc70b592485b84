"""Recording operations: a `running` row when the engine starts, the end and the changes
when it finishes, and `interrupted` for runs whose process died. Each step is audited."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from driftwarden.domain.model import (
    AuditAction,
    OperationOutcome,
    OperationStatus,
    ResourceChange,
    Trigger,
)
from driftwarden.store.audit import AuditChain
from driftwarden.store.models import (
    Operation,
    PropertyChangeRow,
    ResourceChangeRow,
    utcnow,
)
from driftwarden.system.processes import pid_alive


@dataclass(frozen=True)
class OperationStart:
    id: str
    stack: str
    project: str
    pulumi_stack: str
    kind: str  # drift | code (checks), plan-refresh | plan-up | refresh | up (remediation)
    trigger: Trigger
    actor: str
    started_at: datetime


def start_operation(session: Session, audit: AuditChain, start: OperationStart) -> Operation:
    operation = Operation(
        id=start.id,
        stack=start.stack,
        project=start.project,
        pulumi_stack=start.pulumi_stack,
        kind=start.kind,
        trigger=start.trigger,
        actor=start.actor,
        status=OperationStatus.RUNNING,
        started_at=start.started_at,
        host=socket.gethostname(),
        pid=os.getpid(),
    )
    session.add(operation)
    audit.append(
        session,
        actor=start.actor,
        action=AuditAction.OPERATION_STARTED,
        stack=start.stack,
        operation_id=start.id,
        details={
            "kind": start.kind,
            "trigger": start.trigger,
            "project": start.project,
            "pulumi_stack": start.pulumi_stack,
        },
        time=start.started_at,
    )
    return operation


def finish_operation(
    session: Session,
    audit: AuditChain,
    operation_id: str,
    *,
    status: OperationStatus,
    outcome: OperationOutcome | None,
    changes: Sequence[ResourceChange] = (),
    error: str | None = None,
    error_kind: str | None = None,
    cli_version: str | None = None,
    finished_at: datetime | None = None,
) -> Operation:
    operation = session.get(Operation, operation_id)
    if operation is None:
        raise LookupError(f"no operation {operation_id}")
    finished = finished_at or utcnow()
    operation.status = status
    operation.outcome = outcome
    operation.finished_at = finished
    operation.duration_ms = int((finished - operation.started_at).total_seconds() * 1000)
    operation.error = error
    operation.error_kind = error_kind
    operation.cli_version = cli_version
    operation.resource_changes = len(changes)
    operation.property_changes = sum(len(change.properties) for change in changes)
    for change in changes:
        row = ResourceChangeRow(
            operation_id=operation_id, urn=change.urn, type=change.type, change=change.change
        )
        session.add(row)
        session.flush()  # the row's id, for its properties
        assert row.id is not None
        session.add_all(
            PropertyChangeRow(
                resource_change_id=row.id,
                path=prop.path,
                kind=prop.kind,
                expected=prop.expected,
                actual=prop.actual,
                secret=prop.secret,
                source=prop.source,
            )
            for prop in change.properties
        )
    session.add(operation)
    audit.append(
        session,
        actor=operation.actor,
        action=AuditAction.OPERATION_FINISHED,
        stack=operation.stack,
        operation_id=operation_id,
        outcome=outcome or status.value,
        details={
            "kind": operation.kind,
            "status": status.value,
            "outcome": outcome,
            "resource_changes": operation.resource_changes,
            "property_changes": operation.property_changes,
            "duration_ms": operation.duration_ms,
            "error": error,
        },
        time=finished,
    )
    return operation


def recover_interrupted(session: Session, audit: AuditChain, actor: str) -> list[Operation]:
    """Operations left `running` by a dead process on this host become `interrupted`.

    Runs of other hosts are left alone: whether their process lives cannot be told here
    (on PostgreSQL, `recover_orphaned` tells by their stack's lock).
    """
    host = socket.gethostname()
    stale = session.exec(
        select(Operation).where(Operation.status == OperationStatus.RUNNING, Operation.host == host)
    ).all()
    recovered = []
    for operation in stale:
        if operation.pid is not None and operation.pid != os.getpid():
            if pid_alive(operation.pid):
                continue
        elif operation.pid == os.getpid():
            continue
        _interrupt(session, audit, actor, operation,
                   f"the process running it (pid {operation.pid} on {host}) died")  # fmt: skip
        recovered.append(operation)
    return recovered


def running_operations(session: Session) -> list[tuple[str, str]]:
    """(operation id, stack) of every operation recorded `running`, on any host."""
    rows = session.exec(
        select(Operation.id, Operation.stack).where(Operation.status == OperationStatus.RUNNING)
    ).all()
    return [(id_, stack) for id_, stack in rows]


def interrupt_if_running(
    session: Session, audit: AuditChain, actor: str, operation_id: str, why: str
) -> bool:
    """Mark the operation `interrupted` if it is still `running` (its holder lost)."""
    operation = session.get(Operation, operation_id)
    if operation is None or operation.status != OperationStatus.RUNNING:
        return False
    _interrupt(session, audit, actor, operation, why)
    return True


def _interrupt(
    session: Session, audit: AuditChain, actor: str, operation: Operation, why: str
) -> None:
    now = utcnow()
    operation.status = OperationStatus.INTERRUPTED
    operation.outcome = OperationOutcome.ERROR
    operation.finished_at = now
    operation.duration_ms = int((now - operation.started_at).total_seconds() * 1000)
    operation.error = why
    operation.error_kind = "interrupted"
    session.add(operation)
    audit.append(
        session,
        actor=actor,
        action=AuditAction.OPERATION_INTERRUPTED,
        stack=operation.stack,
        operation_id=operation.id,
        outcome="interrupted",
        details={
            "pid": operation.pid,
            "host": operation.host,
            "started_at": operation.started_at.isoformat(),
        },
        time=now,
    )


def last_in_sync_before(
    session: Session, stack: str, check: str, before: datetime
) -> datetime | None:
    """When the newest successful `check` that found `stack` in sync before `before` began."""
    started: datetime | None = session.exec(
        select(Operation.started_at)
        .where(
            Operation.stack == stack, Operation.kind == check,
            Operation.status == OperationStatus.SUCCEEDED,
            Operation.outcome == OperationOutcome.IN_SYNC,
            col(Operation.started_at) < before,
        )
        .order_by(col(Operation.started_at).desc())
        .limit(1)
    ).first()  # fmt: skip
    return started


def lost_runs(
    session: Session, stack: str, since: datetime
) -> list[tuple[str, datetime, datetime]]:
    """(host, started, ended) of the stack's operations `interrupted` since `since`."""
    rows = session.exec(
        select(Operation.host, Operation.started_at, Operation.finished_at).where(
            Operation.stack == stack, Operation.status == OperationStatus.INTERRUPTED,
            col(Operation.started_at) >= since,
        )
    ).all()  # fmt: skip
    return [(host, started, ended) for host, started, ended in rows if ended is not None]
