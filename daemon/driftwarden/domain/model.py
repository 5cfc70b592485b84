"""The domain vocabulary of SPEC.md: checks, statuses, changes, findings and what caused
them, the audit chain's actions and the notifications' events. Pure data, no I/O.

The enums are `StrEnum`s: a member is its value wherever a string goes (the store, JSON,
the audit chain), so naming a value here changes nothing a user sees.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self


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


def failure_streak(statuses: Iterable[str]) -> int:
    """Consecutive failures, newest first; cancelled/interrupted runs neither count nor break."""
    streak = 0
    for status in statuses:
        if OperationStatus(status).is_failure:
            streak += 1
        elif status == OperationStatus.SUCCEEDED:
            break
    return streak


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
    DRIFT_ACCEPTED = "drift.accepted"  # not fixed: a refresh, import or edit took it in
    DRIFT_DIGEST = "drift.digest"  # a scheduled recap, not a transition
    CHECK_FAILING = "check.failing"  # and its recovery
    REMEDIATION_NEEDS_APPROVAL = "remediation.needs_approval"
    REMEDIATION_SUCCEEDED = "remediation.succeeded"
    REMEDIATION_FAILED = "remediation.failed"
    TEST = "test"  # `driftwarden notify test`


class ErrorKind(StrEnum):
    """Why an operation failed (`error_kind`): the engine's errors, classified, and the
    failures around it."""

    CLI_MISSING = "cli_missing"
    CLI_VERSION = "cli_version"
    PLUGIN_MISSING = "plugin_missing"
    NOT_DEPLOYED = "not_deployed"
    PROGRAM_ERROR = "program_error"
    PASSPHRASE = "passphrase"
    BACKEND_UNREACHABLE = "backend_unreachable"
    LOCKED = "locked"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    PLAN_CHANGED = "plan_changed"
    ENGINE_ERROR = "engine_error"
    ERROR = "error"  # a driftwarden error that is not the engine's
    AUDIT_SOURCE = "audit_source"  # an audit source's list did not come back


class RemediationMode(StrEnum):
    """How drift is undone: `refresh` accepts the live values into state; `up` puts the
    infrastructure back to the program."""

    REFRESH = "refresh"
    UP = "up"


class RemediationStatus(StrEnum):
    """How a remediation ended."""

    NOTHING_TO_DO = "nothing_to_do"
    DRY_RUN = "dry_run"
    REFUSED = "refused"  # by its guardrails: nothing was changed
    NEEDS_APPROVAL = "needs_approval"
    DECLINED = "declined"  # by whoever was shown the plan
    SUCCEEDED = "succeeded"
    INCOMPLETE = "incomplete"  # it ran, differences remain
    FAILED = "failed"


class NotificationStatus(StrEnum):
    """Where a queued message stands in the outbox."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # every attempt used


class AuditAction(StrEnum):
    """What an audit event records. A stack update read from the stack's own history is
    recorded as `stack.<its kind>` (`StackUpdate.action`): Pulumi names those kinds."""

    CONFIG_LOADED = "config.loaded"
    OPERATION_STARTED = "operation.started"
    OPERATION_FINISHED = "operation.finished"
    OPERATION_INTERRUPTED = "operation.interrupted"
    FINDING_OPENED = "finding.opened"
    FINDING_CHANGED = "finding.changed"
    FINDING_RESOLVED = "finding.resolved"
    FINDING_ACCEPTED = "finding.accepted"  # gone because a change of the state absorbed it
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
    PLATFORM_EVENTS = "platform.events"  # a batch of an audit source's events, stored
    STATE_CHANGED = "state.changed"  # what an update wrote into a stack's state
    STATE_EDITED = "state.edited"  # the state changed with no update to account for it
    AUDIT_DIGEST = "audit.digest"  # the events since the last digest, hashed and signed

    @classmethod
    def of_transition(cls, kind: TransitionKind) -> AuditAction:
        """`finding.opened`, `finding.changed` or `finding.resolved`."""
        return cls(f"finding.{kind}")


STACK_UPDATE_ACTION_PREFIX = "stack."  # + the update's kind: stack.update, stack.refresh, …


def urn_name(urn: str) -> str:
    """A resource's name, the last part of its URN (`…::pulumi-python:dynamic:Resource::motd`)."""
    return urn.rsplit("::", 1)[-1]


REDACTED = "[secret]"


class DifferenceSource(StrEnum):
    """Where a difference was found (`PropertyChange.source`)."""

    DIFF = "diff"  # the provider's diff reported it
    # found by comparing the state's outputs with the refreshed ones where the provider's
    # diff was silent
    OUTPUTS = "outputs"
    INVENTORY = "inventory"  # a field of an object no stack manages
    STATE = "state"  # what a change of the state wrote


STATE_SOURCE = DifferenceSource.STATE


@dataclass(frozen=True)
class PropertyChange:
    path: str  # Pulumi's property path, verbatim
    kind: str  # a DiffKind ("" where a whole resource stands in for its properties)
    expected: Any  # what the state says (None when absent)
    actual: Any  # the live value (drift) or the planned one (code)
    secret: bool = False  # True => expected and actual are REDACTED
    source: str = DifferenceSource.DIFF  # a DifferenceSource

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


# ---------------------------------------------------------------------------- stack updates


@dataclass(frozen=True)
class StackUpdate:
    """One entry of a stack's update history (`pulumi stack history`): an update run by
    anyone, through driftwarden or not. Recorded in the audit chain as its details."""

    version: int
    kind: str  # update | refresh | destroy | import | … (Pulumi's)
    result: str  # succeeded | failed | in-progress (Pulumi's)
    start_time: datetime
    end_time: datetime | None
    message: str
    resource_changes: dict[str, int]
    environment: dict[str, str]

    @property
    def key(self) -> str:
        """Stable identity: the version where the backend numbers updates, else its start."""
        return f"v{self.version}" if self.version else f"{self.kind}@{self.start_time.isoformat()}"

    @property
    def actor(self) -> str:
        env = self.environment
        for name, email in (("pulumi.user", None), ("updatedBy", None),
                            ("git.author", "git.author.email"),
                            ("git.committer", "git.committer.email")):  # fmt: skip
            if env.get(name):
                return f"{env[name]} <{env[email]}>" if email and env.get(email) else env[name]
        return "unknown"

    @property
    def succeeded(self) -> bool:
        return self.result == "succeeded"

    @property
    def end(self) -> datetime:
        """When it ended; its start while it has not (or when the history does not say)."""
        return self.end_time or self.start_time

    @property
    def action(self) -> str:
        """Its audit action: `stack.update`, `stack.refresh`, …"""
        return f"{STACK_UPDATE_ACTION_PREFIX}{self.kind}"

    def details(self) -> dict[str, Any]:
        """What the audit chain records of it."""
        return {
            "key": self.key, "version": self.version, "kind": self.kind,
            "result": self.result, "actor": self.actor,
            "start_time": self.start_time.isoformat(),
            "end_time": self.end_time.isoformat() if self.end_time else None,
            "message": self.message, "resource_changes": self.resource_changes,
            "environment": self.environment,
        }  # fmt: skip

    @classmethod
    def from_details(cls, details: Any) -> StackUpdate | None:
        """The update an audit event's details record; None when they record none."""
        if not isinstance(details, Mapping) or not details.get("start_time"):
            return None
        end = details.get("end_time")
        return cls(
            version=int(details.get("version") or 0), kind=str(details.get("kind", "")),
            result=str(details.get("result", "")),
            start_time=datetime.fromisoformat(str(details["start_time"])),
            end_time=datetime.fromisoformat(str(end)) if end else None,
            message=str(details.get("message") or ""),
            resource_changes=dict(details.get("resource_changes") or {}),
            environment=dict(details.get("environment") or {}),
        )  # fmt: skip


# ---------------------------------------------------------------------------- attribution


@dataclass(frozen=True)
class Attribution:
    """Who or what caused a difference (found by service.attribution). Stored, audited and
    printed as `to_dict()`: its kind, then its fields in order."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **{f.name: getattr(self, f.name) for f in fields(self)}}

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Self:
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})

    def describe(self) -> str:
        """One line for tables and messages."""
        raise NotImplementedError


@dataclass(frozen=True)
class OutOfBandAttribution(Attribution):
    """No update recorded since the stack was last in sync wrote the resource; with an
    audit source, why it names nobody (`reason`)."""

    kind: ClassVar[str] = "out_of_band"
    reason: str | None = None  # "no audit record since the source started", …

    def to_dict(self) -> dict[str, Any]:
        """Without an audit source there is no reason to give: the shape of before."""
        return {"kind": self.kind, "reason": self.reason} if self.reason else {"kind": self.kind}

    def describe(self) -> str:
        return (
            f"changed outside Pulumi ({self.reason})" if self.reason else ("changed outside Pulumi")
        )


@dataclass(frozen=True)
class PlatformAttribution(Attribution):
    """The platform's own audit record of the write behind a difference: who (also the
    real identity behind an impersonation), with what, from where, when."""

    kind: ClassVar[str] = "platform"
    source: str | None  # the [[audit_sources]] entry
    event_id: str | None  # the platform's id (Kubernetes: auditID)
    time: str | None  # ISO 8601, UTC
    verb: str | None  # create | update | patch | delete
    user: str | None
    groups: list[str] | None
    impersonated_user: str | None
    impersonated_groups: list[str] | None
    user_agent: str | None
    source_ips: list[str] | None
    field_manager: str | None
    fields: list[str] | None  # what the request set, where the record has its body

    @property
    def who(self) -> str:
        """`mallory`, or `admin as mallory` (impersonation: both identities)."""
        if self.impersonated_user:
            return f"{self.user} as {self.impersonated_user}"
        return self.user or "unknown"

    def describe(self) -> str:
        done = {"create": "created", "delete": "deleted"}.get(self.verb or "", "changed")
        agent = (self.user_agent or "").split(" ", 1)[0] or "an unknown client"
        when = (self.time or "")[11:19]
        return f"{done} by {self.who} with {agent}" + (f" at {when}Z" if when else "")


@dataclass(frozen=True)
class UpdateAttribution(Attribution):
    """A stack update (from its history) that wrote the resource, or failed meanwhile."""

    kind: ClassVar[str] = "update"
    update: str | None  # its key (StackUpdate.key)
    operation: str | None  # its kind: update, refresh, …
    actor: str | None
    result: str | None
    time: str | None  # when it started (ISO 8601)
    message: str | None

    @classmethod
    def of(cls, update: StackUpdate) -> UpdateAttribution:
        return cls(update.key, update.kind, update.actor, update.result,
                   update.start_time.isoformat(), update.message)  # fmt: skip

    def describe(self) -> str:
        return f"{self.operation} by {self.actor} ({self.result}, {self.time})"


@dataclass(frozen=True)
class CommitAttribution(Attribution):
    """The newest git commit touching the project (pending code changes)."""

    kind: ClassVar[str] = "commit"
    commit: str
    author: str  # "name <email>"
    time: str  # ISO 8601
    subject: str

    def describe(self) -> str:
        return f"commit {str(self.commit)[:10]} by {self.author} ({self.time})"


@dataclass(frozen=True)
class UnknownAttribution(Attribution):
    """Nothing to tell (no git repository, or a record this version cannot read)."""

    kind: ClassVar[str] = "unknown"

    def describe(self) -> str:
        return "unknown"


_ATTRIBUTION_OF_KIND: dict[str, type[Attribution]] = {
    kind.kind: kind
    for kind in (OutOfBandAttribution, UpdateAttribution, CommitAttribution, PlatformAttribution)
}


def attribution_from_dict(data: Any) -> Attribution | None:
    """The attribution a stored (JSON) record says; None for none."""
    if not isinstance(data, Mapping) or not data:
        return None
    return _ATTRIBUTION_OF_KIND.get(str(data.get("kind")), UnknownAttribution).from_stored(data)


def describe_attribution(attribution: Attribution | None) -> str:
    """One line for tables and messages."""
    return attribution.describe() if attribution else ""


# ---------------------------------------------------------------------------- findings


TransitionKind = Literal["opened", "changed", "resolved", "accepted"]


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
    attribution: Attribution | None = None  # who or what caused it

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
            "attribution": self.attribution.to_dict() if self.attribution else None,
        }
        if self.previous is not None:
            data["previous"] = self.previous
        return data
