"""The domain vocabulary of SPEC.md: checks, statuses, changes and findings, the audit
chain's actions and the notifications' events. Pure data, no I/O.

The enums are `StrEnum`s: a member is its value wherever a string goes (the store, JSON,
the audit chain), so naming a value here changes nothing a user sees.
"""

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

    @property
    def outcome(self) -> OperationOutcome:
        """What the check's operation records: its verdict, or `error` when it failed."""
        if self is CheckStatus.FAILED:
            return OperationOutcome.ERROR
        return OperationOutcome(self.value)


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


class OperationOutcome(StrEnum):
    """What an operation found or did, recorded beside its status: a check's verdict, a
    remediation step's result, or `error` when it ended without one."""

    IN_SYNC = "in_sync"
    DRIFTED = "drifted"
    CHANGES_PENDING = "changes_pending"
    PLANNED = "planned"  # a remediation's plan (preview) step
    APPLIED = "applied"  # a remediation's apply step
    ERROR = "error"


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


class Severity(StrEnum):
    """How bad a difference is, as the risk rules rate it (lowest first)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class ChangeKind(StrEnum):
    """What happens to a resource as a whole (`ResourceChange.change`)."""

    UPDATE = "update"
    DELETE = "delete"
    CREATE = "create"
    REPLACE = "replace"


class DiffKind(StrEnum):
    """What happens to one property (`PropertyChange.kind`): Pulumi's diff kinds. A
    `-replace` kind is a difference that forces the resource's replacement."""

    ADD = "add"
    DELETE = "delete"
    UPDATE = "update"
    ADD_REPLACE = "add-replace"
    DELETE_REPLACE = "delete-replace"
    UPDATE_REPLACE = "update-replace"

    @property
    def replacing(self) -> DiffKind:
        """The same difference, forcing a replacement."""
        return self if self.value.endswith("-replace") else DiffKind(f"{self.value}-replace")


class NotificationEvent(StrEnum):
    """What a message is about. Targets choose theirs (`events`) among the configurable
    ones (`config.NOTIFY_EVENTS`); a digest goes to targets with a `digest` schedule."""

    DRIFT_NEW = "drift.new"
    DRIFT_CHANGED = "drift.changed"
    DRIFT_RESOLVED = "drift.resolved"
    DRIFT_DIGEST = "drift.digest"  # a scheduled recap, not a transition
    CHECK_FAILING = "check.failing"  # and its recovery
    REMEDIATION_NEEDS_APPROVAL = "remediation.needs_approval"
    REMEDIATION_SUCCEEDED = "remediation.succeeded"
    REMEDIATION_FAILED = "remediation.failed"
    TEST = "test"  # `driftwarden notify test`


class AuditAction(StrEnum):
    """What an audit event records. A stack update read from the stack's own history is
    recorded as `stack.<its kind>` (STACK_UPDATE_ACTION_PREFIX): Pulumi names those kinds."""

    CONFIG_LOADED = "config.loaded"
    OPERATION_STARTED = "operation.started"
    OPERATION_FINISHED = "operation.finished"
    OPERATION_INTERRUPTED = "operation.interrupted"
    FINDING_OPENED = "finding.opened"
    FINDING_CHANGED = "finding.changed"
    FINDING_RESOLVED = "finding.resolved"
    REMEDIATION_PLANNED = "remediation.planned"
    REMEDIATION_REFUSED = "remediation.refused"
    REMEDIATION_NEEDS_APPROVAL = "remediation.needs_approval"
    REMEDIATION_DECLINED = "remediation.declined"
    REMEDIATION_APPROVED = "remediation.approved"
    REMEDIATION_SUCCEEDED = "remediation.succeeded"
    REMEDIATION_INCOMPLETE = "remediation.incomplete"
    NOTIFICATION_SENT = "notification.sent"
    NOTIFICATION_FAILED = "notification.failed"
    NOTIFICATION_TEST = "notification.test"
    SCAN_REQUESTED = "scan.requested"
    SCAN_SKIPPED = "scan.skipped"
    SCAN_REQUEST_REJECTED = "scan.request_rejected"
    STORE_PRUNED = "store.pruned"

    @classmethod
    def of_transition(cls, kind: TransitionKind) -> AuditAction:
        """`finding.opened`, `finding.changed` or `finding.resolved`."""
        return cls(f"finding.{kind}")


STACK_UPDATE_ACTION_PREFIX = "stack."  # + the update's kind: stack.update, stack.refresh, …


def urn_name(urn: str) -> str:
    """A resource's name, the last part of its URN (`…::pulumi-python:dynamic:Resource::motd`)."""
    return urn.rsplit("::", 1)[-1]


REDACTED = "[secret]"


@dataclass(frozen=True)
class PropertyChange:
    path: str  # Pulumi's property path, verbatim
    kind: str  # a DiffKind ("" where a whole resource stands in for its properties)
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
    change: ChangeKind
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


# ---------------------------------------------------------------------------- findings


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
    change: str  # a ChangeKind (of the resource)
    path: str  # "" for a whole resource
    property_kind: str  # the property's DiffKind ("" for a whole resource)
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
