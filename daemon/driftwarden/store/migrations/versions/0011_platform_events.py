"""Audit sources: the platform's events, each source's cursor, and the objects each stack
manages (how an event finds its stack).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = "platform_events is append-only"
# As audit_events (0001): what the platform said is never rewritten.
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER platform_events_no_{verb.lower()} BEFORE {verb} ON platform_events
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"""
    for verb in ("UPDATE", "DELETE")
]
POSTGRESQL_TRIGGERS = [
    f"""CREATE FUNCTION platform_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY} (% refused)', TG_OP USING ERRCODE = 'restrict_violation';
END
$$""",
    """CREATE TRIGGER platform_events_no_update_delete BEFORE UPDATE OR DELETE
ON platform_events FOR EACH ROW EXECUTE FUNCTION platform_events_append_only()""",
    """CREATE TRIGGER platform_events_no_truncate BEFORE TRUNCATE ON platform_events
FOR EACH STATEMENT EXECUTE FUNCTION platform_events_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "platform_events",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verb", sa.String(length=32), nullable=False),
        sa.Column("user", sa.String(length=300), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("impersonated_user", sa.String(length=300), nullable=True),
        sa.Column("impersonated_groups", sa.JSON(), nullable=False),
        sa.Column("user_agent", sa.Text(), nullable=False),
        sa.Column("source_ips", sa.JSON(), nullable=False),
        sa.Column("api_group", sa.String(length=253), nullable=False),
        sa.Column("api_version", sa.String(length=64), nullable=True),
        sa.Column("resource", sa.String(length=253), nullable=False),
        sa.Column("kind", sa.String(length=253), nullable=False),
        sa.Column("subresource", sa.String(length=64), nullable=True),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("field_manager", sa.String(length=253), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("engine", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("source", "event_id"),
    )
    op.create_index(
        "ix_platform_events_object",
        "platform_events",
        ["api_group", "kind", "namespace", "name", "time"],
    )
    op.create_index("ix_platform_events_time", "platform_events", ["time"])
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)
    op.create_table(
        "source_cursors",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read", sa.BigInteger(), nullable=False),
        sa.Column("kept", sa.BigInteger(), nullable=False),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("malformed", sa.BigInteger(), nullable=False),
        sa.Column("lost", sa.BigInteger(), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("platform_errors", sa.JSON(), nullable=True),
        sa.Column("platform_errors_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_table(
        "managed_objects",
        sa.Column("stack", sa.String(length=100), nullable=False),
        sa.Column("urn", sa.String(length=1000), nullable=False),
        sa.Column("api_group", sa.String(length=253), nullable=False),
        sa.Column("api_version", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=253), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stack", "urn"),
    )
    op.create_index(
        "ix_managed_objects_object", "managed_objects", ["api_group", "kind", "namespace", "name"]
    )


def downgrade() -> None:
    op.drop_table("managed_objects")
    op.drop_table("source_cursors")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER platform_events_no_truncate ON platform_events")
        op.execute("DROP TRIGGER platform_events_no_update_delete ON platform_events")
        op.execute("DROP FUNCTION platform_events_append_only()")
    op.drop_index("ix_platform_events_time", table_name="platform_events")
    op.drop_index("ix_platform_events_object", table_name="platform_events")
    op.drop_table("platform_events")
