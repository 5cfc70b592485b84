"""The finding lifecycle: opened, seen again, changed, resolved. Each transition is audited.

A finding is one differing (stack, check, resource, property); a resource that is
deleted or created as a whole is one finding with path "". Only successful checks feed
this: a failed check resolves nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from driftwarden.model import FindingTransition, ResourceChange, TransitionKind
from driftwarden.rules import Assessment
from driftwarden.store.audit import AuditChain
from driftwarden.store.models import Finding, utcnow


@dataclass(frozen=True)
class Observation:
    """One differing property (or whole resource) as a check saw it."""

    urn: str
    type: str
    change: str
    path: str
    kind: str
    expected: Any
    actual: Any
    secret: bool
    source: str = "diff"

    @property
    def values(self) -> tuple[Any, ...]:
        return (self.change, self.kind, self.expected, self.actual, self.secret)


def observations(changes: Sequence[ResourceChange]) -> Iterator[Observation]:
    for change in changes:
        if not change.properties:
            yield Observation(change.urn, change.type, change.change, "", "", None, None, False)
        for prop in change.properties:
            yield Observation(
                change.urn, change.type, change.change, prop.path, prop.kind,
                prop.expected, prop.actual, prop.secret, prop.source,
            )  # fmt: skip


def new_finding_id() -> str:
    return f"fd-{secrets.token_hex(8)}"


def apply_check(
    session: Session,
    audit: AuditChain,
    *,
    stack: str,
    check: str,
    operation_id: str,
    actor: str,
    changes: Sequence[ResourceChange],
    seen_at: datetime,
    assess: Callable[[Observation], Assessment | None] | None = None,
    attributions: Mapping[str, dict[str, Any]] | None = None,
) -> list[FindingTransition]:
    """Fold one successful check's changes into the open findings of (stack, check)."""
    open_findings = {
        (finding.urn, finding.path): finding
        for finding in session.exec(
            select(Finding).where(
                Finding.stack == stack, Finding.check == check, col(Finding.resolved_at).is_(None)
            )
        )
    }
    transitions: list[FindingTransition] = []
    seen: set[tuple[str, str]] = set()
    for obs in observations(changes):
        key = (obs.urn, obs.path)
        if key in seen:
            continue
        seen.add(key)
        finding = open_findings.get(key)
        rating = assess(obs) if assess is not None else None
        severity, rule = (rating.severity.value, rating.title) if rating else (None, None)
        if finding is None:
            finding = Finding(
                id=new_finding_id(), stack=stack, check=check, urn=obs.urn, type=obs.type,
                change=obs.change, path=obs.path, kind=obs.kind, expected=obs.expected,
                actual=obs.actual, secret=obs.secret, source=obs.source,
                first_seen=seen_at, last_seen=seen_at,
                occurrences=1, first_operation_id=operation_id, last_operation_id=operation_id,
                severity=severity, rule=rule, attribution=(attributions or {}).get(obs.urn),
            )  # fmt: skip
            session.add(finding)
            transitions.append(transition_of("opened", finding))
            continue
        finding.last_seen = seen_at
        finding.occurrences += 1
        finding.severity, finding.rule = severity, rule
        finding.last_operation_id = operation_id
        finding.source = obs.source
        before = (finding.change, finding.kind, finding.expected, finding.actual, finding.secret)
        if before != obs.values:
            previous = {"change": finding.change, "kind": finding.kind,
                        "expected": finding.expected, "actual": finding.actual}  # fmt: skip
            finding.change, finding.kind = obs.change, obs.kind
            finding.expected, finding.actual, finding.secret = obs.expected, obs.actual, obs.secret
            transitions.append(transition_of("changed", finding, previous))
        session.add(finding)
    for key, finding in open_findings.items():
        if key not in seen:
            finding.resolved_at = seen_at
            finding.last_operation_id = operation_id
            session.add(finding)
            transitions.append(transition_of("resolved", finding))
    for transition in transitions:
        audit.append(
            session,
            actor=actor,
            action=f"finding.{transition.kind}",
            stack=stack,
            operation_id=operation_id,
            outcome=transition.kind,
            details=transition.details(),
            time=seen_at,
        )
    return transitions


def transition_of(
    kind: TransitionKind, finding: Finding, previous: dict[str, Any] | None = None
) -> FindingTransition:
    """The finding as a transition of `kind`: what messages and the audit chain carry."""
    return FindingTransition(
        kind=kind, finding_id=finding.id, stack=finding.stack, check=finding.check,
        urn=finding.urn, type=finding.type, change=finding.change, path=finding.path,
        property_kind=finding.kind, expected=finding.expected, actual=finding.actual,
        secret=finding.secret, source=finding.source, previous=previous,
        severity=finding.severity, rule=finding.rule,
        attribution=finding.attribution,
    )  # fmt: skip


def request_approval(
    session: Session, audit: AuditChain, stack: str, check: str, *, operation_id: str,
    actor: str, mode: str,
) -> list[str]:  # fmt: skip
    """Mark the stack's open findings of `check` as waiting for approval; the ids marked
    now (none when all were marked before), audited as `remediation.needs_approval`."""
    findings = session.exec(
        select(Finding).where(
            Finding.stack == stack, Finding.check == check, col(Finding.resolved_at).is_(None),
        )
    ).all()  # fmt: skip
    fresh = [f for f in findings if f.approval_requested_at is None]
    now = utcnow()
    for finding in fresh:
        finding.approval_requested_at = now
        session.add(finding)
    if fresh:
        audit.append(
            session, actor=actor, action="remediation.needs_approval", stack=stack,
            operation_id=operation_id, outcome="needs_approval",
            details={"mode": mode, "findings": [f.id for f in fresh]},
        )  # fmt: skip
    return [f.id for f in fresh]
