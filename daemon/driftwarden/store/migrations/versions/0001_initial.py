"""Initial schema: operations, their changes, findings, and the append-only audit chain.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Types are spelled out (String, DateTime(timezone=True)) rather than imported from the
models, so this revision keeps meaning the same thing when the models move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = "audit_events is append-only"

# SQLite: abort any UPDATE or DELETE of an audit event.
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"""
    for verb in ("UPDATE", "DELETE")
]

# PostgreSQL: a row trigger for UPDATE/DELETE, and a statement trigger for TRUNCATE,
# which fires no DELETE triggers. restrict_violation makes drivers report an integrity
# error, as SQLite's ABORT does.
POSTGRESQL_TRIGGERS = [
    f"""CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY} (% refused)', TG_OP USING ERRCODE = 'restrict_violation';
END
$$""",
    """CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""",
    """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""",
]


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "operations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("stack", sa.String(length=100), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("pulumi_stack", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("resource_changes", sa.Integer(), nullable=False),
        sa.Column("property_changes", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(length=64), nullable=True),
        sa.Column("cli_version", sa.String(length=32), nullable=True),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_operations_stack_started", "operations", ["stack", "started_at"])
    op.create_index(
        "ix_operations_stack_kind_started", "operations", ["stack", "kind", "started_at"]
    )
    op.create_index("ix_operations_started", "operations", ["started_at"])
    op.create_index("ix_operations_status", "operations", ["status"])

    op.create_table(
        "resource_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.String(length=64), nullable=False),
        sa.Column("urn", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=300), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["operation_id"], ["operations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_resource_changes_operation_id", "resource_changes", ["operation_id"])

    op.create_table(
        "property_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_change_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("expected", sa.JSON(), nullable=False),
        sa.Column("actual", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["resource_change_id"], ["resource_changes.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_property_changes_resource_change_id", "property_changes", ["resource_change_id"]
    )

    op.create_table(
        "findings",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("stack", sa.String(length=100), nullable=False),
        sa.Column("check", sa.String(length=16), nullable=False),
        sa.Column("urn", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=300), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("expected", sa.JSON(), nullable=False),
        sa.Column("actual", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Boolean(), nullable=False),
        sa.Column("first_seen", _utc(), nullable=False),
        sa.Column("last_seen", _utc(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("resolved_at", _utc(), nullable=True),
        sa.Column("first_operation_id", sa.String(length=64), nullable=False),
        sa.Column("last_operation_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_findings_stack_resolved", "findings", ["stack", "resolved_at"])
    op.create_index(
        "ux_findings_open",
        "findings",
        ["stack", "check", "urn", "path"],
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )

    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("time", _utc(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("stack", sa.String(length=100), nullable=True),
        sa.Column("operation_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_audit_stack_time", "audit_events", ["stack", "time"])
    op.create_index("ix_audit_time", "audit_events", ["time"])
    op.create_index("ix_audit_action_seq", "audit_events", ["action", "seq"])

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        statements = SQLITE_TRIGGERS
    elif dialect == "postgresql":
        statements = POSTGRESQL_TRIGGERS
    else:
        raise NotImplementedError(f"no append-only protection for {dialect}")
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER audit_events_no_update_delete ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_table("audit_events")  # SQLite drops its triggers with the table
    op.drop_table("findings")
    op.drop_table("property_changes")
    op.drop_table("resource_changes")
    op.drop_table("operations")
