"""The state's own audit trail: what each update, refresh, import or edit wrote into a
stack's state, and how a finding ended (resolved, or accepted into the state).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "state_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stack", sa.String(length=100), nullable=False),
        sa.Column("change_key", sa.String(length=100), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("urn", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=300), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("expected", sa.JSON(), nullable=True),
        sa.Column("actual", sa.JSON(), nullable=True),
        sa.Column("secret", sa.Boolean(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_state_changes_stack_urn_path", "state_changes", ["stack", "urn", "time"])
    op.create_table(
        "state_audits",
        sa.Column("stack", sa.String(length=100), nullable=False),
        sa.Column("change_key", sa.String(length=100), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stack", "change_key"),
    )
    with op.batch_alter_table("findings") as batch:
        batch.add_column(sa.Column("ended_as", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("accepted_by", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("findings") as batch:
        batch.drop_column("accepted_by")
        batch.drop_column("ended_as")
    op.drop_table("state_audits")
    op.drop_index("ix_state_changes_stack_urn_path", table_name="state_changes")
    op.drop_table("state_changes")
