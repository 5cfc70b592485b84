"""Where a difference came from: the provider's diff or the refreshed outputs.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("property_changes", "findings"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("source", sa.String(length=16), nullable=False, server_default="diff")
            )


def downgrade() -> None:
    for table in ("property_changes", "findings"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("source")
