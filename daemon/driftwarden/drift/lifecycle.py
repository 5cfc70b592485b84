"""The finding lifecycle as a pure fold: opened, seen again, changed, resolved.

A finding is one differing (stack, check, resource, property); a resource that is
deleted or created as a whole is one finding with path "". One successful check's
changes, folded into the open findings, give the findings to write and the transitions
to audit and announce. A check only touches the findings of its own stack and check: a
drift check never resolves what a code check found. Only successful checks are folded
(the caller's rule): a failed check resolves nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from driftwarden.domain.model import Attribution, FindingTransition, ResourceChange, TransitionKind


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
    def key(self) -> tuple[str, str]:
        """What a finding is of, within its stack and check."""
        return (self.urn, self.path)

    @property
    def values(self) -> tuple[Any, ...]:
        """What, when it differs from the open finding's, makes the finding `changed`."""
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


@dataclass(frozen=True, kw_only=True)
class FindingRecord(Observation):
    """One finding: the latest observation of its property, and its lifecycle."""

    id: str
    stack: str
    check: str
    severity: str | None  # of the highest matching risk rule
    rule: str | None
    attribution: Attribution | None  # who or what caused it, as the check opening it said
    first_seen: datetime
    last_seen: datetime
    occurrences: int
    first_operation_id: str
    last_operation_id: str
    resolved_at: datetime | None = None
    # "resolved", or "accepted": a change of the state absorbed it (`accepted_by` whose).
    ended_as: str | None = None
    accepted_by: Attribution | None = None

    def transition(
        self, kind: TransitionKind, previous: dict[str, Any] | None = None
    ) -> FindingTransition:
        """This finding as a transition of `kind`: what messages and the audit chain carry
        (an acceptance carries who accepted it as its attribution)."""
        said = self.accepted_by if kind == "accepted" else self.attribution
        return FindingTransition(
            kind=kind, finding_id=self.id, stack=self.stack, check=self.check, urn=self.urn,
            type=self.type, change=self.change, path=self.path, property_kind=self.kind,
            expected=self.expected, actual=self.actual, secret=self.secret, source=self.source,
            previous=previous, severity=self.severity, rule=self.rule, attribution=said,
        )  # fmt: skip


class Rating(Protocol):
    """A risk rule's verdict on one observation (rules.Assessment is one)."""

    @property
    def severity(self) -> str: ...

    @property
    def title(self) -> str: ...


@dataclass(frozen=True)
class CheckSeen:
    """What one successful check saw, and where it ran."""

    stack: str
    check: str
    operation_id: str
    seen_at: datetime
    changes: Sequence[ResourceChange]
    # The risk rating of an observation, None when no rule matches.
    rate: Callable[[Observation], Rating | None] | None = None
    attributions: Mapping[str, Attribution] = field(default_factory=dict)  # by URN
    # What changes of the state wrote since the findings opened, by (urn, path): a finding
    # gone because the state took its value in was accepted, not resolved.
    absorbed: Mapping[tuple[str, str], Absorbed] = field(default_factory=dict)


@dataclass(frozen=True)
class Absorbed:
    """A value a change of the state wrote at a property, and whose change it was."""

    value: Any
    secret: bool
    by: Attribution

    def took(self, finding: Observation) -> bool:
        """Whether the state took the finding's (live or planned) value in."""
        return self.secret or finding.secret or self.value == finding.actual


@dataclass(frozen=True)
class FoldResult:
    """The findings to write after one check, and its transitions in the order they happen
    (opened and changed as the check reported them, then resolved)."""

    opened: tuple[FindingRecord, ...] = ()  # new findings
    changed: tuple[FindingRecord, ...] = ()  # seen again with other values
    seen: tuple[FindingRecord, ...] = ()  # seen again with the same values
    resolved: tuple[FindingRecord, ...] = ()  # open before, not seen by this check
    transitions: tuple[FindingTransition, ...] = ()

    @property
    def updated(self) -> tuple[FindingRecord, ...]:
        """The findings that were open before and are written again."""
        return self.changed + self.seen + self.resolved


def fold_check(
    open_findings: Iterable[FindingRecord],
    seen: CheckSeen,
    new_id: Callable[[], str] = new_finding_id,
) -> FoldResult:
    """Fold one successful check into the open findings; findings of other stacks or
    checks, and resolved ones, are left alone."""
    before = {
        finding.key: finding
        for finding in open_findings
        if (finding.stack, finding.check) == (seen.stack, seen.check)
        and finding.resolved_at is None
    }
    opened: list[FindingRecord] = []
    changed: list[FindingRecord] = []
    again: list[FindingRecord] = []
    transitions: list[FindingTransition] = []
    observed: set[tuple[str, str]] = set()
    for obs in observations(seen.changes):
        if obs.key in observed:
            continue  # the first report of a property counts
        observed.add(obs.key)
        rating = seen.rate(obs) if seen.rate is not None else None
        severity, rule = (str(rating.severity), rating.title) if rating else (None, None)
        finding = before.get(obs.key)
        if finding is None:
            new = FindingRecord(
                id=new_id(), stack=seen.stack, check=seen.check, urn=obs.urn, type=obs.type,
                change=obs.change, path=obs.path, kind=obs.kind, expected=obs.expected,
                actual=obs.actual, secret=obs.secret, source=obs.source, severity=severity,
                rule=rule, attribution=seen.attributions.get(obs.urn), first_seen=seen.seen_at,
                last_seen=seen.seen_at, occurrences=1, first_operation_id=seen.operation_id,
                last_operation_id=seen.operation_id,
            )  # fmt: skip
            opened.append(new)
            transitions.append(new.transition("opened"))
            continue
        again_seen = replace(
            finding, last_seen=seen.seen_at, occurrences=finding.occurrences + 1,
            severity=severity, rule=rule, last_operation_id=seen.operation_id, source=obs.source,
        )  # fmt: skip
        if finding.values == obs.values:
            again.append(again_seen)
            continue
        previous = {"change": finding.change, "kind": finding.kind,
                    "expected": finding.expected, "actual": finding.actual}  # fmt: skip
        now = replace(
            again_seen, change=obs.change, kind=obs.kind, expected=obs.expected,
            actual=obs.actual, secret=obs.secret,
            # Whoever changed it again, when the check can say (else who opened it).
            attribution=seen.attributions.get(obs.urn) or finding.attribution,
        )  # fmt: skip
        changed.append(now)
        transitions.append(now.transition("changed", previous))
    resolved = []
    for key, finding in before.items():
        if key in observed:
            continue
        absorbed = seen.absorbed.get(key)
        accepted = absorbed is not None and absorbed.took(finding)
        ended = replace(
            finding, resolved_at=seen.seen_at, last_operation_id=seen.operation_id,
            ended_as="accepted" if accepted else "resolved",
            accepted_by=absorbed.by if accepted and absorbed else None,
        )  # fmt: skip
        resolved.append(ended)
        transitions.append(ended.transition("accepted" if accepted else "resolved"))
    return FoldResult(
        opened=tuple(opened), changed=tuple(changed), seen=tuple(again),
        resolved=tuple(resolved), transitions=tuple(transitions),
    )  # fmt: skip
