"""The audit store's tables (SQLModel). Only the store package knows SQL.

Timestamps are timezone-aware UTC (`UtcDateTime`: SQLite keeps no zone, so values are
normalised to UTC on the way in and marked UTC on the way out). JSON values are JSON
columns. Schema changes go through Alembic (store/migrations); keep both in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, String, Text, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store: use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Operation(SQLModel, table=True):
    """One engine run (a check or a remediation step): who, what, when, outcome."""

    __tablename__ = "operations"
    __table_args__ = (
        Index("ix_operations_stack_started", "stack", "started_at"),
        Index("ix_operations_stack_kind_started", "stack", "kind", "started_at"),
        Index("ix_operations_started", "started_at"),
        Index("ix_operations_status", "status"),
    )

    id: str = Field(primary_key=True, max_length=64)
    stack: str = Field(max_length=100)
    project: str = Field(default="", max_length=200)
    pulumi_stack: str = Field(default="", max_length=200)
    kind: str = Field(max_length=32)  # drift | code | plan-refresh | plan-up | refresh | up
    trigger: str = Field(max_length=32)  # cli | schedule | request | remediation
    actor: str = Field(max_length=200)  # user@host for the CLI, "daemon" for schedules
    status: str = Field(
        max_length=32
    )  # running | succeeded | failed | timed_out | cancelled | interrupted
    outcome: str | None = Field(
        default=None, max_length=32
    )  # in_sync | drifted | changes_pending | error
    started_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    duration_ms: int | None = Field(default=None, sa_type=BigInteger)
    resource_changes: int = 0
    property_changes: int = 0
    error: str | None = Field(default=None, sa_type=Text)
    error_kind: str | None = Field(default=None, max_length=64)
    cli_version: str | None = Field(default=None, max_length=32)
    host: str = Field(default="", max_length=200)
    pid: int | None = None


class ResourceChangeRow(SQLModel, table=True):
    __tablename__ = "resource_changes"

    id: int | None = Field(default=None, primary_key=True)
    operation_id: str = Field(foreign_key="operations.id", index=True, max_length=64)
    urn: str = Field(sa_type=Text)
    type: str = Field(max_length=300)
    change: str = Field(max_length=16)


class PropertyChangeRow(SQLModel, table=True):
    __tablename__ = "property_changes"

    id: int | None = Field(default=None, primary_key=True)
    resource_change_id: int = Field(foreign_key="resource_changes.id", index=True)
    path: str = Field(sa_type=Text)
    kind: str = Field(max_length=32)
    expected: Any = Field(default=None, sa_type=JSON)  # "[secret]" when secret
    actual: Any = Field(default=None, sa_type=JSON)
    secret: bool = False
    # "diff" (the provider's diff) or "outputs" (state vs refreshed outputs).
    source: str = Field(default="diff", max_length=16, sa_column_kwargs={"server_default": "diff"})


class Finding(SQLModel, table=True):
    """The lifecycle of one drifted property (or a whole deleted resource, path "")."""

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_stack_resolved", "stack", "resolved_at"),
        # At most one open finding per (stack, check, resource, property).
        Index(
            "ux_findings_open",
            "stack",
            "check",
            "urn",
            "path",
            unique=True,
            sqlite_where=text("resolved_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=64)
    stack: str = Field(max_length=100)
    check: str = Field(max_length=16)
    urn: str = Field(sa_type=Text)
    type: str = Field(max_length=300)
    change: str = Field(max_length=16)  # update | delete | create | replace
    path: str = Field(default="", sa_type=Text)
    kind: str = Field(default="", max_length=32)
    expected: Any = Field(default=None, sa_type=JSON)
    actual: Any = Field(default=None, sa_type=JSON)
    secret: bool = False
    source: str = Field(default="diff", max_length=16, sa_column_kwargs={"server_default": "diff"})
    severity: str | None = Field(default=None, max_length=16)  # the highest matching risk rule
    rule: str | None = Field(default=None, sa_type=Text)  # that rule's title
    # Who or what caused it: out_of_band, a stack update (actor, result) or a commit.
    attribution: Any = Field(default=None, sa_type=JSON, nullable=True)
    first_seen: datetime = Field(sa_type=UtcDateTime)
    last_seen: datetime = Field(sa_type=UtcDateTime)
    occurrences: int = 1
    resolved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Set when a remediation waits for a human (approval = "manual").
    approval_requested_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # How it ended: "resolved" (the live object or the program no longer differs) or
    # "accepted" (a change of the state absorbed it: `accepted_by` says which and whose).
    ended_as: str | None = Field(default=None, max_length=16)
    accepted_by: Any = Field(default=None, sa_type=JSON, nullable=True)
    first_operation_id: str = Field(max_length=64)
    last_operation_id: str = Field(max_length=64)


class AuditEvent(SQLModel, table=True):
    """One link of the tamper-evident chain: hash = HMAC(key, prev_hash ‖ canonical event)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_stack_time", "stack", "time"),
        Index("ix_audit_time", "time"),
        Index("ix_audit_action_seq", "action", "seq"),
    )

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    time: datetime = Field(sa_type=UtcDateTime)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    stack: str | None = Field(default=None, max_length=100)
    operation_id: str | None = Field(default=None, max_length=64)
    outcome: str | None = Field(default=None, max_length=32)
    details: Any = Field(default_factory=dict, sa_type=JSON)
    prev_hash: str = Field(sa_type=String(64))
    hash: str = Field(sa_type=String(64))


class ScanRequest(SQLModel, table=True):
    """`driftwarden trigger`: a scan asked of the running daemon, claimed when it starts."""

    __tablename__ = "scan_requests"
    __table_args__ = (Index("ix_scan_requests_claimed_requested", "claimed_at", "requested_at"),)

    id: str = Field(primary_key=True, max_length=64)
    stack: str = Field(max_length=100)
    checks: list[str] | None = Field(default=None, sa_type=JSON, nullable=True)  # None: its own
    requested_at: datetime = Field(sa_type=UtcDateTime)
    requested_by: str = Field(max_length=200)
    claimed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    claimed_by: str | None = Field(default=None, max_length=200)


class Notification(SQLModel, table=True):
    """The outbox: a message for one target, written with the transition that caused it."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_status_next", "status", "next_attempt_at"),
        Index("ix_notifications_created", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=64)
    # One message per (cause, target): a retry or a re-run never sends it twice.
    idempotency_key: str = Field(max_length=200, unique=True)
    target: str = Field(max_length=100)
    event: str = Field(max_length=64)
    stack: str | None = Field(default=None, max_length=100)
    operation_id: str | None = Field(default=None, max_length=64)
    title: str = Field(sa_type=Text)
    markdown: str = Field(sa_type=Text)
    text: str = Field(sa_type=Text)
    status: str = Field(max_length=16)  # pending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UtcDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # "host:pid" of the sender in the middle of an attempt (a claim), else None.
    claimed_by: str | None = Field(default=None, max_length=200)


class IngestedUpdate(SQLModel, table=True):
    """A stack update already recorded in the audit chain: each is recorded once."""

    __tablename__ = "ingested_updates"

    stack: str = Field(primary_key=True, max_length=100)
    update_key: str = Field(primary_key=True, max_length=100)  # version, or kind@start
    seq: int  # its audit event
    recorded_at: datetime = Field(sa_type=UtcDateTime)


class HistoryStamp(SQLModel, table=True):
    """The stamp of a stack's update history when it was last ingested: a history that
    still has it holds no update the chain lacks (engine.api.history_stamp)."""

    __tablename__ = "history_stamps"

    stack: str = Field(primary_key=True, max_length=100)
    stamp: str = Field(max_length=100)
    recorded_at: datetime = Field(sa_type=UtcDateTime)


class PlatformEventRow(SQLModel, table=True):
    """A write the platform's own audit record holds (an audit source): append-only,
    stored once (by source and the platform's id), secrets redacted before it got here.
    `seq` is the audit chain event that recorded its batch."""

    __tablename__ = "platform_events"
    __table_args__ = (
        Index("ix_platform_events_object", "api_group", "kind", "namespace", "name", "time"),
        Index("ix_platform_events_time", "time"),
    )

    source: str = Field(primary_key=True, max_length=100)
    event_id: str = Field(primary_key=True, max_length=100)
    time: datetime = Field(sa_type=UtcDateTime)
    received_at: datetime = Field(sa_type=UtcDateTime)
    verb: str = Field(max_length=32)
    user: str = Field(max_length=300)
    groups: Any = Field(default=None, sa_type=JSON)
    impersonated_user: str | None = Field(default=None, max_length=300)
    impersonated_groups: Any = Field(default=None, sa_type=JSON)
    user_agent: str = Field(default="", sa_type=Text)
    source_ips: Any = Field(default=None, sa_type=JSON)
    api_group: str = Field(default="", max_length=253)
    api_version: str | None = Field(default=None, max_length=64)
    resource: str = Field(max_length=253)
    kind: str = Field(default="", max_length=253)  # by discovery ("" when unknown)
    subresource: str | None = Field(default=None, max_length=64)
    namespace: str = Field(default="", max_length=253)  # "" for cluster-scoped
    name: str = Field(default="", max_length=253)
    status: int = 0
    field_manager: str | None = Field(default=None, max_length=253)
    fields: Any = Field(default=None, sa_type=JSON)
    body: Any = Field(default=None, sa_type=JSON, nullable=True)
    engine: bool = False  # written by a stack's engine (Pulumi's provider)
    seq: int | None = None


class SourceCursor(SQLModel, table=True):
    """Where an audit source was read up to (a file: inode, device, offset), written in
    the transaction that stores what was read before it."""

    __tablename__ = "source_cursors"

    source: str = Field(primary_key=True, max_length=100)
    cursor: str = Field(sa_type=Text)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    # Counters since the source was added: what it read, kept and dropped, and lost.
    read: int = Field(default=0, sa_type=BigInteger)
    kept: int = Field(default=0, sa_type=BigInteger)
    dropped: int = Field(default=0, sa_type=BigInteger)
    malformed: int = Field(default=0, sa_type=BigInteger)
    lost: int = Field(default=0, sa_type=BigInteger)  # times the file vanished unread
    last_event_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The platform's own count of events it failed to write, per backend, when last asked
    # (Kubernetes: apiserver_audit_error_total{plugin}).
    platform_errors: Any = Field(default=None, sa_type=JSON, nullable=True)
    platform_errors_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ManagedObjectRow(SQLModel, table=True):
    """A platform object a stack manages, as its latest successful drift check read the
    state: how a platform event finds its stack."""

    __tablename__ = "managed_objects"
    __table_args__ = (Index("ix_managed_objects_object", "api_group", "kind", "namespace", "name"),)

    stack: str = Field(primary_key=True, max_length=100)
    urn: str = Field(primary_key=True, max_length=1000)
    api_group: str = Field(default="", max_length=253)
    api_version: str = Field(default="", max_length=64)
    kind: str = Field(max_length=253)
    namespace: str = Field(default="", max_length=253)
    name: str = Field(max_length=253)
    recorded_at: datetime = Field(sa_type=UtcDateTime)


class StateChangeRow(SQLModel, table=True):
    """What one change to a stack's state wrote into it, property by property: an update
    (update, refresh, import, destroy, …) from its history, or an edit that no update
    accounts for (`pulumi state delete`, `stack import`, a hand-edited checkpoint)."""

    __tablename__ = "state_changes"
    __table_args__ = (Index("ix_state_changes_stack_urn_path", "stack", "urn", "time"),)

    id: int | None = Field(default=None, primary_key=True)
    stack: str = Field(max_length=100)
    change_key: str = Field(max_length=100)  # the update's key, or edit@<time>
    cause: str = Field(max_length=32)  # update | refresh | import | destroy | … | edit
    actor: str = Field(max_length=200)
    time: datetime = Field(sa_type=UtcDateTime)
    urn: str = Field(sa_type=Text)
    type: str = Field(max_length=300)
    change: str = Field(max_length=16)  # create | delete | replace | update
    path: str = Field(default="", sa_type=Text)
    kind: str = Field(default="", max_length=32)
    expected: Any = Field(default=None, sa_type=JSON, nullable=True)  # before
    actual: Any = Field(default=None, sa_type=JSON, nullable=True)  # after
    secret: bool = False
    severity: str | None = Field(default=None, max_length=16)
    rule: str | None = Field(default=None, sa_type=Text)
    seq: int | None = None  # the audit event that recorded this change of the state


class StateAudit(SQLModel, table=True):
    """A change of a stack's state already audited, and the state it left (digest)."""

    __tablename__ = "state_audits"

    stack: str = Field(primary_key=True, max_length=100)
    change_key: str = Field(primary_key=True, max_length=100)
    digest: str = Field(max_length=64)
    recorded_at: datetime = Field(sa_type=UtcDateTime)


class ForwardCursor(SQLModel, table=True):
    """How far an `[[audit.forward]]` destination has received the chain: every event up
    to `seq` was delivered (at least once), in order."""

    __tablename__ = "forward_cursors"

    name: str = Field(primary_key=True, max_length=100)
    seq: int = 0
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    failures: int = 0  # consecutive failed attempts
    last_error: str | None = Field(default=None, max_length=500)
