"""Operations, findings, queries and pruning on SQLite and a real PostgreSQL server.

The changes fed in are extracted from engine events recorded from the real engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import col, func, select

from driftwarden.domain.model import (
    AuditAction,
    ChangeKind,
    OperationOutcome,
    OperationStatus,
    PropertyChange,
    ResourceChange,
    Trigger,
)
from driftwarden.drift import extract_changes
from driftwarden.store.db import Store
from driftwarden.store.findings import apply_check, open_finding_records
from driftwarden.store.models import AuditEvent, Finding, Operation, PropertyChangeRow
from driftwarden.store.operations import (
    OperationStart,
    finish_operation,
    recover_interrupted,
    start_operation,
)
from driftwarden.store.outbox import record_test_message
from driftwarden.store.prune import prune, record_prune
from driftwarden.store.queries import history, open_findings, stack_summaries
from driftwarden.store.remediations import record_remediation
from driftwarden.store.requests import claim, record_request_rejected, request_scan
from driftwarden.store.skips import record_skip_streak_ended, record_skip_streak_started
from tests.conftest import load_events

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def drift_changes() -> list[ResourceChange]:
    return extract_changes(load_events("refresh-drift"))


def record(
    store: Store,
    op_id: str,
    *,
    when: datetime,
    changes: list[ResourceChange] | None = None,
    stack: str = "demo",
    kind: str = "drift",
    status: OperationStatus = OperationStatus.SUCCEEDED,
) -> None:
    changes = changes or []
    with store.write() as session:
        start_operation(
            session, store.audit,
            OperationStart(op_id, stack, "local-demo", "dev", kind, Trigger.CLI, "ana@host", when),
        )  # fmt: skip
    with store.write() as session:
        outcome = OperationOutcome.ERROR
        if status is OperationStatus.SUCCEEDED:
            outcome = OperationOutcome.DRIFTED if changes else OperationOutcome.IN_SYNC
        finish_operation(
            session, store.audit, op_id, status=status, outcome=outcome, changes=changes,
            finished_at=when + timedelta(seconds=2), cli_version="3.259.0",
        )  # fmt: skip
        if status is OperationStatus.SUCCEEDED:
            apply_check(
                session, store.audit, stack=stack, check=kind, operation_id=op_id,
                actor="ana@host", changes=changes, seen_at=when + timedelta(seconds=2),
                open_now=open_finding_records(session, stack),
            )  # fmt: skip


def test_operation_is_recorded_with_its_changes_and_redacted_secrets(store: Store) -> None:
    record(store, "op-1", when=T0, changes=drift_changes())
    with store.read() as session:
        operation = session.get(Operation, "op-1")
        assert operation is not None
        assert (operation.status, operation.outcome) == ("succeeded", "drifted")
        assert (operation.resource_changes, operation.property_changes) == (4, 3)
        assert operation.started_at == T0  # timezone-aware UTC back out
        assert operation.duration_ms == 2000
        secret = session.exec(
            select(PropertyChangeRow).where(PropertyChangeRow.secret == True)  # noqa: E712
        ).one()
        assert (secret.expected, secret.actual) == ("[secret]", "[secret]")
    assert store.audit.verify(store).ok


def test_findings_open_repeat_change_and_resolve(store: Store) -> None:
    changes = drift_changes()
    for index in range(3):
        record(store, f"op-{index}", when=T0 + timedelta(minutes=index), changes=changes)
    with store.read() as session:
        findings = open_findings(session, "demo")
    assert len(findings) == 4  # motd.content, settings.mode, api-token.content, readme
    assert {f.occurrences for f in findings} == {3}
    readme = next(f for f in findings if f.urn.endswith("::readme"))
    assert (readme.path, readme.change) == ("", "delete")

    # A failed check in between resolves nothing.
    record(store, "op-failed", when=T0 + timedelta(minutes=5), status=OperationStatus.FAILED)
    # The settings drift goes away; motd changes its live value.
    changed = [c for c in changes if not c.urn.endswith("::settings")]
    motd = next(c for c in changed if c.urn.endswith("::motd"))
    moved = ResourceChange(
        motd.urn, motd.type, ChangeKind.UPDATE,
        (PropertyChange("content", "update", "hello\n", "AGAIN\n", False),),
    )  # fmt: skip
    changed = [moved if c is motd else c for c in changed]
    record(store, "op-4", when=T0 + timedelta(minutes=10), changes=changed)

    with store.read() as session:
        by_urn = {f.urn.rsplit("::", 1)[-1]: f for f in open_findings(session, "demo")}
        assert set(by_urn) == {"motd", "api-token", "readme"}
        assert by_urn["motd"].actual == "AGAIN\n"
        assert by_urn["motd"].occurrences == 4
        resolved = session.exec(select(Finding).where(col(Finding.resolved_at).is_not(None))).one()
        assert resolved.urn.endswith("::settings")
        assert resolved.resolved_at == T0 + timedelta(minutes=10, seconds=2)
        actions = session.exec(
            select(AuditEvent.action, func.count())
            .where(col(AuditEvent.action).like("finding.%"))
            .group_by(AuditEvent.action)
        ).all()
    assert dict(actions) == {"finding.opened": 4, "finding.changed": 1, "finding.resolved": 1}


def test_status_history_and_prune(store: Store) -> None:
    old = T0 - timedelta(days=400)
    record(store, "op-old-clean", when=old)
    record(store, "op-old-drift", when=old + timedelta(hours=1), changes=drift_changes())
    record(store, "op-new", when=T0, changes=drift_changes(), stack="other")
    record(store, "op-new-code", when=T0 + timedelta(hours=1), kind="code", stack="other")
    with store.write() as session:
        start_operation(
            session, store.audit,
            OperationStart("op-running", "demo", "p", "s", "drift", Trigger.CLI, "a", old),
        )  # fmt: skip

    with store.read() as session:
        demo, other, never = stack_summaries(session, ["demo", "other", "never"], ["drift", "code"])
        assert [op.id for op in history(session, limit=3)] == [
            "op-new-code", "op-new", "op-old-drift",
        ]  # fmt: skip
        assert [op.id for op in history(session, stack="other")] == ["op-new-code", "op-new"]
    assert other.latest["drift"].outcome == "drifted"
    assert other.latest["code"].outcome == "in_sync"
    assert other.open_findings == 4
    assert demo.latest["drift"].id == "op-old-drift"
    assert never.latest == {}
    events_before = _count(store, AuditEvent)

    with store.write() as session:
        result = prune(session, older_than=T0 - timedelta(days=180))
    # op-old-clean goes; op-old-drift stays (open findings point at it); running stays.
    assert result.operations == 1
    with store.read() as session:
        remaining = set(session.exec(select(Operation.id)).all())
    assert remaining == {"op-old-drift", "op-new", "op-new-code", "op-running"}
    assert _count(store, AuditEvent) == events_before
    assert store.audit.verify(store).ok


def test_pruning_test_messages_and_remediation_steps_are_audited_as_before(store: Store) -> None:
    cutoff = T0 - timedelta(days=180)
    with store.write() as session:
        pruned = prune(session, older_than=cutoff)
        record_prune(session, store.audit, actor="ana@host", older_than=cutoff, result=pruned)
        record_test_message(session, store.audit, actor="ana@host", target="ops", sent=True,
                            error=None)  # fmt: skip
        record_test_message(session, store.audit, actor="ana@host", target="mail", sent=False,
                            error="connection refused")  # fmt: skip
        record_remediation(session, store.audit, actor="ana@host", stack="demo",
                           operation_id="op-plan", action=AuditAction.REMEDIATION_DECLINED,
                           details={"mode": "up"})  # fmt: skip
    with store.read() as session:
        events = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all()
        recorded = [(e.actor, e.action, e.stack, e.operation_id, e.outcome, e.details)
                    for e in events]  # fmt: skip
    assert recorded == [
        ("ana@host", "store.pruned", None, None, None, {
            "older_than": "2025-07-05T00:00:00+00:00", "operations": 0,
            "resource_changes": 0, "property_changes": 0,
        }),
        ("ana@host", "notification.test", None, None, "sent", {"target": "ops", "error": None}),
        ("ana@host", "notification.test", None, None, "failed",
         {"target": "mail", "error": "connection refused"}),
        ("ana@host", "remediation.declined", "demo", "op-plan", None, {"mode": "up"}),
    ]  # fmt: skip
    assert store.audit.verify(store).ok


def test_dead_process_operations_become_interrupted(store: Store) -> None:
    with store.write() as session:
        operation = start_operation(
            session, store.audit,
            OperationStart("op-dead", "demo", "p", "s", "drift", Trigger.CLI, "a", T0),
        )  # fmt: skip
        operation.pid = 2**22 + 12345  # beyond pid_max: certainly not alive
        session.add(operation)
    with store.write() as session:
        (recovered,) = recover_interrupted(session, store.audit, "ana@host")
    assert recovered.id == "op-dead"
    with store.read() as session:
        dead = session.get(Operation, "op-dead")
        assert dead is not None
        assert (dead.status, dead.error_kind) == ("interrupted", "interrupted")
        last = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc())).first()
        assert last is not None
        assert (last.action, last.operation_id) == ("operation.interrupted", "op-dead")


def test_skip_streaks_and_rejected_requests_are_audited(store: Store) -> None:
    with store.write() as session:
        record_skip_streak_started(session, store.audit, "demo", actor="daemon",
                                   trigger=Trigger.SCHEDULE)  # fmt: skip
        record_skip_streak_ended(session, store.audit, "demo", actor="daemon", skipped=4,
                                 since=T0)  # fmt: skip
        request = request_scan(session, store.audit, stack="gone", checks=None, actor="ana@host")
        assert claim(session, request.id, "daemon@host:1")
        record_request_rejected(session, store.audit, request, actor="daemon",
                                reason="unknown stack")  # fmt: skip
    with store.read() as session:
        events = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all()
    recorded = [(e.action, e.stack, e.outcome, e.details) for e in events if e.actor == "daemon"]
    assert recorded == [
        ("scan.skipped", "demo", "skipped", {"reason": "still running", "trigger": "schedule"}),
        ("scan.skipped", "demo", "skipped",
         {"reason": "still running", "skipped": 4, "since": "2026-01-01T00:00:00+00:00"}),
        ("scan.request_rejected", "gone", "rejected",
         {"request_id": request.id, "reason": "unknown stack"}),
    ]  # fmt: skip
    assert store.audit.verify(store).ok


def _count(store: Store, model: type[AuditEvent]) -> int:
    with store.read() as session:
        return int(session.exec(select(func.count()).select_from(model)).one())
