"""What `status`, `history`, `drift show` and `notify list` show, as data: the table and
`--json` print the same dictionaries, and whatever else shows them (a dashboard, metrics,
the Python API) builds on these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from driftwarden.config import Config
from driftwarden.domain.model import Check, OperationStatus, stack_state
from driftwarden.domain.redact import redact_url
from driftwarden.drift.rules import severity_rank
from driftwarden.store.db import Store
from driftwarden.store.digests import last_digest_time
from driftwarden.store.forwarding import cursors
from driftwarden.store.models import AuditEvent, Finding, Notification, Operation
from driftwarden.store.outbox import list_notifications
from driftwarden.store.platform import source_progress
from driftwarden.store.queries import history, open_findings, stack_summaries
from driftwarden.store.state import change_view, stacks_with_changes, state_changes

CHECKS = frozenset(check.value for check in Check)


def iso(value: datetime | None) -> str | None:
    """RFC 3339 UTC with a Z, seconds precision: the form tables and JSON share. The
    store's times are UTC (aware; a naive one is taken as UTC, never as local time)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def operation_view(op: Operation) -> dict[str, Any]:
    """One operation. `kind` is what it did (drift, code, plan-up, up, …); `check` is set
    only for the two checks, so a remediation step never reads as one."""
    return {
        "operation_id": op.id,
        "stack": op.stack,
        "kind": op.kind,
        "check": op.kind if op.kind in CHECKS else None,
        "trigger": op.trigger,
        "actor": op.actor,
        "status": op.status,
        "outcome": op.outcome,
        "started_at": iso(op.started_at),
        "finished_at": iso(op.finished_at),
        "duration_ms": op.duration_ms,
        "resource_changes": op.resource_changes,
        "property_changes": op.property_changes,
        "cli_version": op.cli_version,
        "host": op.host,
        "error": op.error,
    }


def history_view(store: Store, *, stack: str | None, limit: int) -> list[dict[str, Any]]:
    with store.read() as session:
        return [operation_view(op) for op in history(session, stack=stack, limit=limit)]


def status_view(config: Config, store: Store, now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per configured stack: its state (the one rule, `model.stack_state`), open
    findings, last and next scan, and each check's latest operation."""
    now = now or datetime.now(UTC)
    with store.read() as session:
        summaries = stack_summaries(
            session, [stack.name for stack in config.stacks], [check.value for check in Check]
        )
    rows = []
    for stack, summary in zip(config.stacks, summaries, strict=True):
        last = summary.last_scan
        rows.append({
            "stack": stack.name,
            "state": stack_state((op.status, op.outcome) for op in summary.latest.values()),
            "open_findings": summary.open_findings,
            "last_scan": iso(last),
            "next_scan": iso(config.schedule_of(stack).next_run(last, now)),
            # Where its checks run now (a worker's host; distributed mode spreads them).
            "running_on": sorted({op.host for op in summary.latest.values()
                                  if op.status == OperationStatus.RUNNING}),
            "checks": {
                kind: {
                    "operation_id": op.id, "status": op.status, "outcome": op.outcome,
                    "started_at": iso(op.started_at), "host": op.host, "error": op.error,
                }
                for kind, op in summary.latest.items()
            },
        })  # fmt: skip
    return rows


def finding_view(finding: Finding) -> dict[str, Any]:
    return {
        "finding_id": finding.id,
        "check": finding.check,
        "urn": finding.urn,
        "type": finding.type,
        "change": finding.change,
        "path": finding.path,
        "kind": finding.kind,
        "expected": finding.expected,
        "actual": finding.actual,
        "secret": finding.secret,
        "source": finding.source,
        "severity": finding.severity,
        "rule": finding.rule,
        "needs_approval": finding.approval_requested_at is not None,
        "attribution": finding.attribution,
        "first_seen": iso(finding.first_seen),
        "last_seen": iso(finding.last_seen),
        "occurrences": finding.occurrences,
        "last_operation_id": finding.last_operation_id,
    }


def findings_view(store: Store, stack: str) -> list[dict[str, Any]]:
    """A stack's open findings, the most dangerous first."""
    with store.read() as session:
        findings = [finding_view(finding) for finding in open_findings(session, stack)]
    return sorted(findings, key=lambda finding: -severity_rank(finding["severity"]))


def audit_event_view(event: AuditEvent) -> dict[str, Any]:
    """One audit event, as `audit log --json` prints it."""
    return {
        "seq": event.seq, "time": iso(event.time), "actor": event.actor,
        "action": event.action, "stack": event.stack, "operation_id": event.operation_id,
        "outcome": event.outcome, "details": event.details,
    }  # fmt: skip


def notification_view(n: Notification) -> dict[str, Any]:
    """One message of the outbox, as `notify list --json` prints it."""
    return {
        "notification_id": n.id, "target": n.target, "event": n.event, "stack": n.stack,
        "operation_id": n.operation_id, "title": n.title, "status": n.status,
        "attempts": n.attempts, "created_at": iso(n.created_at), "sent_at": iso(n.sent_at),
        "next_attempt_at": iso(n.next_attempt_at), "last_error": n.last_error,
        "idempotency_key": n.idempotency_key,
    }  # fmt: skip


def notifications_view(
    store: Store, *, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The outbox's queued, sent and failed messages (only `status` ones, when given),
    newest first."""
    with store.read() as session:
        found = list_notifications(session, status=status, limit=limit)
        return [notification_view(n) for n in found]


def state_changes_view(store: Store, stack: str | None, limit: int = 200) -> list[dict[str, Any]]:
    """What the changes of each stack's state wrote (newest first): per update, refresh,
    import or edit, each resource and property, before → after, rated."""
    with store.read() as session:
        rows = [row for name in ([stack] if stack else stacks_with_changes(session))
                for row in state_changes(session, name, limit=limit)]  # fmt: skip
    rows.sort(key=lambda row: (row.time, row.id or 0), reverse=True)
    return [change_view(row) for row in rows[:limit]]


def sources_view(config: Config, store: Store) -> list[dict[str, Any]]:
    """One row per audit source: what it read, kept and lost, its newest event, and what
    the platform said it failed to write (`status`, `/metrics`)."""
    if not config.audit_sources:
        return []
    with store.read() as session:
        found = [source_progress(session, source.name) for source in config.audit_sources]
    rows = []
    for source, progress in zip(config.audit_sources, found, strict=True):
        row: dict[str, Any] = progress.to_dict()
        for key in ("last_event_at", "last_read_at", "platform_errors_at"):
            row[key] = iso(row[key])
        feeds = (["log"] if source.path else []) + (
            ["webhook"] if source.webhook_token_file or source.webhook_token_credential else []
        )
        rows.append({**row, "kind": source.kind, "feeds": feeds,
                     "complete": not any((progress.platform_errors or {}).values())
                     and not progress.lost})  # fmt: skip
    return rows


def trust_view(config: Config, store: Store) -> dict[str, Any]:
    """The record's own health (`status`): the newest signed digest, and how far each
    `[[audit.forward]]` destination has received the chain."""
    head = store.audit.head(store)[0]
    signed = last_digest_time(store)
    reached = {row.name: row for row in cursors(store)}
    forward = []
    for target in config.audit.forward:
        row = reached.get(target.name)
        seq = row.seq if row else 0
        forward.append({
            "name": target.name, "url": redact_url(target.url), "seq": seq, "head": head,
            "behind": max(0, head - seq), "delivered_at": iso(row.delivered_at) if row else None,
            "failures": row.failures if row else 0, "last_error": row.last_error if row else None,
        })  # fmt: skip
    return {"head": head, "last_digest_at": iso(signed), "forward": forward}
