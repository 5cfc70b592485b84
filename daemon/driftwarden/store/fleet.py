"""Fleet-wide reads for the dashboard and `/metrics`: a few grouped statements each,
whatever the number of stacks (the per-stack reads are in queries.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Text, case, cast, func, select
from sqlmodel import Session, col

from driftwarden.domain.model import AuditAction, Check, OperationStatus
from driftwarden.store.models import AuditEvent, Finding, Notification, Operation

# Check durations, in seconds: the histogram's upper bounds (+Inf is added).
DURATION_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0)
_CHECKS = [check.value for check in Check]
_REMEDIATION_KINDS = ("plan-refresh", "plan-up", "refresh", "up")
# A finding's timeline shows at most this many notifications.
TIMELINE_EVENTS = 2000


def open_by_severity(session: Session) -> dict[str, dict[str | None, int]]:
    """Open findings per stack and severity (None: unrated)."""
    rows = session.execute(
        select(col(Finding.stack), col(Finding.severity), func.count())
        .where(col(Finding.resolved_at).is_(None))
        .group_by(col(Finding.stack), col(Finding.severity))
    )
    counts: dict[str, dict[str | None, int]] = {}
    for stack, severity, count in rows:
        counts.setdefault(stack, {})[severity] = int(count)
    return counts


def last_successes(session: Session) -> dict[tuple[str, str], datetime]:
    """When each (stack, check) last finished a check successfully."""
    rows = session.execute(
        select(col(Operation.stack), col(Operation.kind), func.max(col(Operation.finished_at)))
        .where(
            col(Operation.kind).in_(_CHECKS),
            col(Operation.status) == OperationStatus.SUCCEEDED.value,
        )
        .group_by(col(Operation.stack), col(Operation.kind))
    )
    return {(stack, kind): when for stack, kind, when in rows if when is not None}


@dataclass(frozen=True)
class DurationHistogram:
    """Finished checks per kind: cumulative counts per bucket bound, count and sum (s)."""

    bounds: tuple[float, ...]  # the buckets' upper bounds, in seconds (+Inf not included)
    buckets: dict[str, list[int]]  # kind -> a cumulative count per bound
    count: dict[str, int]
    total_seconds: dict[str, float]


def check_durations(session: Session, since: datetime) -> DurationHistogram:
    """The checks finished since `since`, in one pass (a window, not the whole store:
    `db prune` would make all-time counts go down)."""
    seconds = col(Operation.duration_ms) / 1000.0
    columns = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in DURATION_BUCKETS]
    rows = session.execute(
        select(col(Operation.kind), func.count(), func.sum(seconds), *columns)
        .where(
            col(Operation.kind).in_(_CHECKS),
            col(Operation.duration_ms).is_not(None),
            col(Operation.started_at) >= since,
        )
        .group_by(col(Operation.kind))
    )
    buckets, count, total = {}, {}, {}
    for kind, n, summed, *per_bucket in rows:
        buckets[kind] = [int(b or 0) for b in per_bucket]
        count[kind] = int(n)
        total[kind] = float(summed or 0.0)
    return DurationHistogram(DURATION_BUCKETS, buckets, count, total)


def failures_by_kind(session: Session, since: datetime) -> dict[tuple[str, str], int]:
    """Operations started since `since` that failed or timed out, per (status, kind)."""
    failed = (OperationStatus.FAILED.value, OperationStatus.TIMED_OUT.value)
    rows = session.execute(
        select(col(Operation.status), col(Operation.error_kind), func.count())
        .where(col(Operation.status).in_(failed), col(Operation.started_at) >= since)
        .group_by(col(Operation.status), col(Operation.error_kind))
    )
    return {(status, kind or "unknown"): int(n) for status, kind, n in rows}


def remediation_outcomes(session: Session, since: datetime) -> dict[tuple[str, str], int]:
    """Remediation steps started since `since`, per (kind, status)."""
    rows = session.execute(
        select(col(Operation.kind), col(Operation.status), func.count())
        .where(col(Operation.kind).in_(_REMEDIATION_KINDS), col(Operation.started_at) >= since)
        .group_by(col(Operation.kind), col(Operation.status))
    )
    return {(kind, status): int(n) for kind, status, n in rows}


def outbox_depth(session: Session) -> dict[str, int]:
    """Notifications per status (pending, sent, failed)."""
    rows = session.execute(
        select(col(Notification.status), func.count()).group_by(col(Notification.status))
    )
    return {status: int(n) for status, n in rows}


def finding(session: Session, finding_id: str) -> Finding | None:
    return session.get(Finding, finding_id)


def finding_timeline(session: Session, found: Finding) -> list[AuditEvent]:
    """The audit events of one finding, oldest first: its transitions (opened, changed,
    resolved), the approval requests that named it, and the notifications sent for the
    checks that moved it. Finding ids are unique random strings, so the events whose
    details mention the id are few however busy the stack; they are checked exactly
    below."""
    mentioning = session.execute(
        select(AuditEvent)
        .where(
            col(AuditEvent.stack) == found.stack,
            col(AuditEvent.time) >= found.first_seen,
            cast(col(AuditEvent.details), Text).contains(found.id),
        )
        .order_by(col(AuditEvent.seq))
    ).scalars()
    timeline: list[AuditEvent] = []
    operations: set[str] = set()
    for event in mentioning:
        details = event.details if isinstance(event.details, dict) else {}
        named = details.get("findings")
        if event.action.startswith("finding.") and details.get("finding_id") == found.id:
            if event.operation_id:
                operations.add(event.operation_id)
            timeline.append(event)
        elif isinstance(named, list) and found.id in named:
            timeline.append(event)
    if operations:
        timeline += session.execute(
            select(AuditEvent)
            .where(
                col(AuditEvent.stack) == found.stack,
                col(AuditEvent.action).like("notification.%"),
                col(AuditEvent.operation_id).in_(sorted(operations)),
            )
            .order_by(col(AuditEvent.seq))
            .limit(TIMELINE_EVENTS)
        ).scalars()
    return sorted(timeline, key=lambda event: event.seq)


# The action families the audit page filters by.
AUDIT_ACTIONS = sorted({action.value.split(".")[0] for action in AuditAction} | {"stack"})
