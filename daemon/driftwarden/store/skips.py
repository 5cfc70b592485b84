"""Scans the daemon skipped because their stack was still scanning.

A streak of skips is audited twice at most: at its first skip, and when it ends, how many
there were and since when (a 2 s schedule on a slow stack would flood the chain)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from driftwarden.domain.model import AuditAction, Trigger
from driftwarden.store.audit import AuditChain

SKIP_REASON = "still running"


def record_skip_streak_started(
    session: Session, audit: AuditChain, stack: str, *, actor: str, trigger: Trigger
) -> None:
    """The first skip of a streak: why, and what asked for the scan."""
    audit.append(
        session, actor=actor, action=AuditAction.SCAN_SKIPPED, stack=stack, outcome="skipped",
        details={"reason": SKIP_REASON, "trigger": trigger},
    )  # fmt: skip


def record_skip_streak_ended(
    session: Session, audit: AuditChain, stack: str, *, actor: str, skipped: int,
    since: datetime,
) -> None:  # fmt: skip
    """A streak of more than one skip ended (the scan that caused it finished)."""
    audit.append(
        session, actor=actor, action=AuditAction.SCAN_SKIPPED, stack=stack, outcome="skipped",
        details={"reason": SKIP_REASON, "skipped": skipped, "since": since.isoformat()},
    )  # fmt: skip
