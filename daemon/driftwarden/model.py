"""The domain vocabulary of SPEC.md: checks, statuses and changes. Pure data, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class Check(StrEnum):
    DRIFT = "drift"  # refresh --preview-only: live infrastructure vs state
    CODE = "code"  # preview: program vs state


class CheckStatus(StrEnum):
    IN_SYNC = "in_sync"
    DRIFTED = "drifted"
    CHANGES_PENDING = "changes_pending"
    FAILED = "failed"

    @classmethod
    def for_changes(cls, check: Check, has_changes: bool) -> CheckStatus:
        if not has_changes:
            return cls.IN_SYNC
        return cls.DRIFTED if check is Check.DRIFT else cls.CHANGES_PENDING


class Trigger(StrEnum):
    """Why an operation ran."""

    CLI = "cli"  # somebody ran driftwarden scan / remediate
    SCHEDULE = "schedule"  # the daemon's schedule (or a retry)
    REQUEST = "request"  # `driftwarden trigger`, picked up by the daemon
    REMEDIATION = "remediation"  # a step of a remediation (plan, apply, verify)


class OperationStatus(StrEnum):
    """Where an operation (a check, a remediation step) stands in the store."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"  # stopped by a shutdown: nobody's fault, no verdict
    INTERRUPTED = "interrupted"  # its process died; found and marked on the next start

    @property
    def is_failure(self) -> bool:
        """Counts toward a failing streak and makes a stack `failed`."""
        return self in (OperationStatus.FAILED, OperationStatus.TIMED_OUT)


class StackState(StrEnum):
    """A stack's state, as `status`, the daemon and its STATUS line show it."""

    NEVER_SCANNED = "never_scanned"
    RUNNING = "running"
    FAILED = "failed"
    DRIFTED = "drifted"
    CHANGES_PENDING = "changes_pending"
    IN_SYNC = "in_sync"
    STOPPED = "stopped"  # its latest checks were cancelled or interrupted: no verdict yet


def stack_state(latest: Iterable[tuple[str, str | None]]) -> StackState:
    """The one rule for a stack's state, from the (status, outcome) of each check's latest
    operation: running > failed > drifted > changes_pending > in_sync. A check that was
    stopped (cancelled, interrupted) gives no verdict; with no verdict at all, `stopped`."""
    operations = [(OperationStatus(status), outcome) for status, outcome in latest]
    if not operations:
        return StackState.NEVER_SCANNED
    if any(status is OperationStatus.RUNNING for status, _ in operations):
        return StackState.RUNNING
    if any(status.is_failure for status, _ in operations):
        return StackState.FAILED
    outcomes = {outcome for status, outcome in operations if status is OperationStatus.SUCCEEDED}
    if not outcomes:
        return StackState.STOPPED
    for state in (StackState.DRIFTED, StackState.CHANGES_PENDING):
        if state.value in outcomes:
            return state
    return StackState.IN_SYNC


def urn_name(urn: str) -> str:
    """A resource's name, the last part of its URN (`…::pulumi-python:dynamic:Resource::motd`)."""
    return urn.rsplit("::", 1)[-1]


REDACTED = "[secret]"


@dataclass(frozen=True)
class PropertyChange:
    path: str  # Pulumi's property path, verbatim
    kind: str  # add | delete | update | add-replace | delete-replace | update-replace
    expected: Any  # what the state says (None when absent)
    actual: Any  # the live value (drift) or the planned one (code)
    secret: bool = False  # True => expected and actual are REDACTED
    # "diff": the provider's diff reported it; "outputs": found by comparing the state's
    # outputs with the refreshed ones where the provider's diff was silent.
    source: str = "diff"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "expected": self.expected,
            "actual": self.actual,
            "secret": self.secret,
            "source": self.source,
        }


@dataclass(frozen=True)
class ResourceChange:
    urn: str
    type: str
    change: str  # update | delete | create | replace
    properties: tuple[PropertyChange, ...] = field(default_factory=tuple)
    # The live object as the refresh read it (secrets still blinded), for risk rules that
    # look at the whole resource (a subject added to a binding of cluster-admin). Never
    # stored or printed.
    live: Any = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return urn_name(self.urn)

    def to_dict(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "change": self.change,
            "properties": [prop.to_dict() for prop in self.properties],
        }


TransitionKind = Literal["opened", "changed", "resolved"]


@dataclass(frozen=True)
class FindingTransition:
    """A finding opened, changed or resolved by a check (values already redacted)."""

    kind: TransitionKind
    finding_id: str
    stack: str
    check: str
    urn: str
    type: str
    change: str  # update | delete | create | replace (of the resource)
    path: str  # "" for a whole resource
    property_kind: str  # the property's diff kind (add, update, …-replace)
    expected: Any
    actual: Any
    secret: bool
    source: str = "diff"  # the provider's diff, or the refreshed outputs
    previous: dict[str, Any] | None = None  # for "changed": the values before
    severity: str | None = None  # of the highest matching risk rule
    rule: str | None = None
    attribution: dict[str, Any] | None = None  # who or what caused it (see service.attribution)

    def details(self) -> dict[str, Any]:
        data = {
            "finding_id": self.finding_id,
            "check": self.check,
            "urn": self.urn,
            "type": self.type,
            "change": self.change,
            "path": self.path,
            "kind": self.property_kind,
            "expected": self.expected,
            "actual": self.actual,
            "secret": self.secret,
            "source": self.source,
            "severity": self.severity,
            "rule": self.rule,
            "attribution": self.attribution,
        }
        if self.previous is not None:
            data["previous"] = self.previous
        return data


def describe_attribution(attribution: dict[str, Any] | None) -> str:
    """One line for tables and messages."""
    if not attribution:
        return ""
    kind = attribution.get("kind")
    if kind == "out_of_band":
        return "changed outside Pulumi"
    if kind == "update":
        return (f"{attribution.get('operation', 'update')} by {attribution.get('actor')} "
                f"({attribution.get('result')}, {attribution.get('time')})")  # fmt: skip
    if kind == "commit":
        return (f"commit {str(attribution.get('commit'))[:10]} by {attribution.get('author')} "
                f"({attribution.get('time')})")  # fmt: skip
    return "unknown"
