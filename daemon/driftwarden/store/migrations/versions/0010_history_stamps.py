"""Per stack, the stamp of the update history last ingested (skip an unchanged history).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "history_stamps",
        sa.Column("stack", sa.String(length=100), nullable=False),
        sa.Column("stamp", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stack"),
    )


def downgrade() -> None:
    op.drop_table("history_stamps")
