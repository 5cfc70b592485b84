"""Scan requests: `driftwarden trigger` asks the running daemon to scan now.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scan_requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("stack", sa.String(length=100), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_scan_requests_claimed_requested", "scan_requests", ["claimed_at", "requested_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_scan_requests_claimed_requested", table_name="scan_requests")
    op.drop_table("scan_requests")
