"""Digests: a scheduled recap, per target, of every finding still open on its stacks.

Transition messages say what changed; a digest says what is still wrong, so drift that
nobody fixed does not fall out of sight. It goes through the outbox like every message,
keyed by target and time slot so a slot is queued once. Nothing open: nothing is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from driftwarden.config import Config, TargetConfig
from driftwarden.notify.render import DigestStack, Message, render_digest
from driftwarden.service.messages.notifications import queue_message
from driftwarden.store import Session
from driftwarden.store.db import Store
from driftwarden.store.findings import transition_of
from driftwarden.store.models import utcnow
from driftwarden.store.queries import open_findings

DigestStatus = Literal["queued", "nothing_open", "already_queued"]


@dataclass(frozen=True)
class DigestResult:
    target: str
    status: DigestStatus
    stacks: int = 0  # stacks with open findings in the digest
    findings: int = 0
    notification_id: str | None = None


def digest_stacks(session: Session, config: Config, target: TargetConfig) -> list[DigestStack]:
    """The open findings of every stack that notifies `target`, at its minimum severity."""
    result = []
    for stack in config.stacks:
        if target.name not in {t.name for t in config.targets_of(stack)}:
            continue
        findings = [f for f in open_findings(session, stack.name) if target.accepts(f.severity)]
        if findings:
            result.append(
                DigestStack(
                    name=stack.name,
                    findings=[transition_of("opened", finding) for finding in findings],
                    open_since=min(finding.first_seen for finding in findings),
                )
            )
    return result


def queue_digest(
    store: Store, config: Config, target: TargetConfig, *, slot: datetime | None = None
) -> DigestResult:
    """Queue the digest of `slot` (default: now) for `target`; once per target and second."""
    slot = slot or utcnow()
    with store.write() as session:
        stacks = digest_stacks(session, config, target)
        message: Message | None = render_digest(stacks)
        if message is None:
            return DigestResult(target.name, "nothing_open")
        queued = queue_message(session, message, [target],
                               cause=f"digest-{slot:%Y-%m-%dT%H:%M:%S}")  # fmt: skip
        findings = sum(len(s.findings) for s in stacks)
        if not queued:
            return DigestResult(target.name, "already_queued", len(stacks), findings)
        return DigestResult(target.name, "queued", len(stacks), findings, queued[0].id)
