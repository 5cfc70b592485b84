"""Run checks on configured stacks now, one stack's failure never stopping the others."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from driftwarden.config import Config, StackConfig
from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import (
    Attribution,
    Check,
    CheckStatus,
    FindingTransition,
    OperationOutcome,
    OperationStatus,
    ResourceChange,
    Severity,
    Trigger,
)
from driftwarden.domain.platform import ManagedRef
from driftwarden.drift import extract_changes
from driftwarden.drift.noise import without_noise
from driftwarden.drift.rules import Assessment, assess_change, at_least, highest, severity_rank
from driftwarden.engine.api import Action, project_name
from driftwarden.engine.errors import EngineError, EngineErrorKind
from driftwarden.service.attribution import attribute
from driftwarden.service.locks import stack_lock
from driftwarden.service.logs import logger
from driftwarden.service.notifications import queue_for_check
from driftwarden.service.platform import sources_of, survey
from driftwarden.service.runtime import Runtime
from driftwarden.store.findings import apply_check
from driftwarden.store.operations import OperationStart, finish_operation, start_operation
from driftwarden.store.platform import replace_managed
from driftwarden.system.failpoints import crash_point

Progress = Callable[[str], None]


def new_operation_id(now: datetime) -> str:
    """Sortable by time, unique across processes: op-20261123T190102Z-9f3a1c2e."""
    return f"op-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


@dataclass
class CheckResult:
    stack: str
    project: str
    pulumi_stack: str
    check: Check
    status: CheckStatus
    operation_id: str
    started_at: datetime
    duration_seconds: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    cli_version: str | None = None
    changes: list[ResourceChange] = field(default_factory=list)
    transitions: list[FindingTransition] = field(default_factory=list)
    ratings: dict[str, dict[str, Assessment]] = field(default_factory=dict)  # urn -> path ->
    attributions: dict[str, Attribution] = field(default_factory=dict)  # urn ->

    def severity_of(self, change: ResourceChange) -> Severity | None:
        top = highest(self.ratings.get(change.urn, {}).values())
        return top.severity if top else None

    @property
    def severity(self) -> Severity | None:
        """The highest severity among this check's differences."""
        top = highest(r for by_path in self.ratings.values() for r in by_path.values())
        return top.severity if top else None

    def to_dict(self) -> dict[str, Any]:
        """SPEC.md's `scan --json` result shape."""
        return {
            "stack": self.stack,
            "project": self.project,
            "pulumi_stack": self.pulumi_stack,
            "check": self.check.value,
            "status": self.status.value,
            "operation_id": self.operation_id,
            "error": self.error,
            "changes": [self._change_dict(change) for change in self.changes],
        }

    def _change_dict(self, change: ResourceChange) -> dict[str, Any]:
        data = change.to_dict()
        ratings = self.ratings.get(change.urn, {})
        severity = self.severity_of(change)
        data["severity"] = severity.value if severity else None
        attribution = self.attributions.get(change.urn)
        data["attribution"] = attribution.to_dict() if attribution else None
        for prop in data["properties"]:
            rating = ratings.get(prop["path"])
            prop["severity"] = rating.severity.value if rating else None
            prop["rule"] = rating.title if rating else None
        if not change.properties and "" in ratings:
            data["rule"] = ratings[""].title
        return data


def findings_of_run(
    config: Config, stack: StackConfig, check: Check, events: Sequence[dict[str, Any]]
) -> list[ResourceChange]:
    """What a check found: the engine's differences (for drift, also those only the
    refreshed outputs show), less noise (built-in profiles and `[[ignore]]`)."""
    changes = extract_changes(events, stack.sensitive_paths, compare_outputs=check is Check.DRIFT)
    return without_noise(changes, config.noise_rules())


def select_stacks(config: Config, names: Sequence[str]) -> list[StackConfig]:
    if not names:
        return list(config.stacks)
    return [config.stack(name) for name in dict.fromkeys(names)]


STATUS_OF_ERROR = {
    EngineErrorKind.TIMED_OUT.value: OperationStatus.TIMED_OUT,
    EngineErrorKind.CANCELLED.value: OperationStatus.CANCELLED,
}


def run_check(
    runtime: Runtime,
    stack: StackConfig,
    check: Check,
    *,
    trigger: Trigger = Trigger.CLI,
    actor: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    wait: bool = True,
) -> CheckResult:
    """Run one check and record it: `running` first, then its end, changes and findings.

    Holds the stack's lock for the whole run: one engine operation per stack at a time,
    across processes (`wait=False` fails fast with StackBusyError instead of waiting).
    """
    actor = actor or runtime.actor
    with stack_lock(
        runtime.lock_dir,
        stack.name,
        store=runtime.store,
        wait=wait,
        on_wait=lambda: progress("waiting for another scan of this stack") if progress else None,
        cancel=cancel,
    ):
        return _run_locked(runtime, stack, check, trigger, actor, progress, cancel)


def _run_locked(
    runtime: Runtime,
    stack: StackConfig,
    check: Check,
    trigger: Trigger,
    actor: str,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> CheckResult:
    started = datetime.now(UTC)
    result = CheckResult(
        stack=stack.name,
        project=project_name(stack.project_dir),
        pulumi_stack=stack.stack,
        check=check,
        status=CheckStatus.FAILED,
        operation_id=new_operation_id(started),
        started_at=started,
    )
    audit = runtime.store.audit
    runtime.clear_stale_engine_locks(stack)
    with runtime.store.write() as session:
        start_operation(
            session,
            audit,
            OperationStart(
                id=result.operation_id, stack=stack.name, project=result.project,
                pulumi_stack=stack.stack, kind=check.value, trigger=trigger, actor=actor,
                started_at=started,
            ),
        )  # fmt: skip
    logger.info(
        "operation started",
        extra={"stack": stack.name, "check": check.value, "operation_id": result.operation_id,
               "trigger": trigger},
    )  # fmt: skip
    crash_point("check.before-engine")
    try:
        run = runtime.stack_engine(stack, cancel).run(Action.of(check), progress)
    except DriftwardenError as exc:
        result.error = str(exc)
        result.error_kind = exc.kind.value if isinstance(exc, EngineError) else "error"
        status = STATUS_OF_ERROR.get(result.error_kind, OperationStatus.FAILED)
        _finish(runtime, stack, result, status=status, outcome=OperationOutcome.ERROR)
        return result
    except BaseException:
        # Ctrl-C or a crash: the operation must not stay `running`.
        result.error, result.error_kind = "stopped before the engine finished", "cancelled"
        _finish(runtime, stack, result, status=OperationStatus.CANCELLED,
                outcome=OperationOutcome.ERROR)  # fmt: skip
        raise
    crash_point("check.after-engine")
    changes = findings_of_run(runtime.config, stack, check, run.events)
    surveyed = None
    if check is Check.DRIFT and sources_of(runtime.config, stack):
        try:
            surveyed = survey(runtime, stack, run.events, now=started)
        except DriftwardenError as exc:  # a list that did not come back resolves nothing
            result.error, result.error_kind = f"audit source: {exc}", "audit_source"
            _finish(runtime, stack, result, status=OperationStatus.FAILED,
                    outcome=OperationOutcome.ERROR)  # fmt: skip
            return result
        changes += without_noise(surveyed.unmanaged, runtime.config.noise_rules())
    rules = runtime.config.risk_rules()
    result.ratings = {change.urn: assess_change(rules, change) for change in changes}
    # The most dangerous first; the engine's own order varies from run to run anyway.
    result.changes = sorted(changes, key=lambda c: (-severity_rank(result.severity_of(c)), c.urn))
    result.status = CheckStatus.for_changes(check, bool(result.changes))
    result.cli_version = run.cli_version
    try:
        result.attributions = attribute(
            runtime, stack, check, result.changes, before=result.started_at, cancel=cancel,
            refs=surveyed.refs if surveyed else None,
        )  # fmt: skip
    except DriftwardenError as exc:  # attribution informs; it never fails a check
        logger.warning("attribution failed", extra={"stack": stack.name, "error": str(exc)})
    if surveyed is not None:
        result.attributions |= surveyed.attributions
    _finish(runtime, stack, result, status=OperationStatus.SUCCEEDED,
            outcome=result.status.outcome, actor=actor,
            managed=list(surveyed.refs.values()) if surveyed else None)  # fmt: skip
    return result


def _finish(
    runtime: Runtime,
    stack: StackConfig,
    result: CheckResult,
    *,
    status: OperationStatus,
    outcome: OperationOutcome,
    actor: str | None = None,
    managed: Sequence[ManagedRef] | None = None,
) -> None:
    finished = datetime.now(UTC)
    audit = runtime.store.audit
    with runtime.store.write() as session:
        finish_operation(
            session, audit, result.operation_id, status=status, outcome=outcome,
            changes=result.changes, error=result.error, error_kind=result.error_kind,
            cli_version=result.cli_version, finished_at=finished,
        )  # fmt: skip
        if status is OperationStatus.SUCCEEDED:
            result.transitions = apply_check(
                session, audit, stack=result.stack, check=result.check.value,
                operation_id=result.operation_id, actor=actor or runtime.actor,
                changes=result.changes, seen_at=finished,
                attributions=result.attributions,
                assess=lambda obs: result.ratings.get(obs.urn, {}).get(obs.path),
            )  # fmt: skip
        if managed is not None:  # what audit events about this stack's objects now find
            replace_managed(session, result.stack, managed)
        # In the same transaction: a notification can be late, never lost.
        queue_for_check(
            session, runtime.config, stack, check=result.check.value,
            operation_id=result.operation_id, status=status, transitions=result.transitions,
            error=result.error,
        )  # fmt: skip
        crash_point("check.before-commit")
    crash_point("check.after-commit")
    result.duration_seconds = (finished - result.started_at).total_seconds()
    logger.info(
        "operation finished",
        extra={
            "stack": result.stack, "check": result.check.value,
            "operation_id": result.operation_id, "status": status, "outcome": outcome,
            "duration_s": round(result.duration_seconds, 2),
            "resources": len(result.changes),
            "properties": sum(len(c.properties) for c in result.changes),
            "findings_opened": sum(t.kind == "opened" for t in result.transitions),
            "findings_resolved": sum(t.kind == "resolved" for t in result.transitions),
            "error_kind": result.error_kind,
        },
    )  # fmt: skip


def exit_code(results: Sequence[CheckResult], fail_on: Severity | None = None) -> int:
    """SPEC.md: 1 if any check failed, else 3 if any found differences, else 0.

    With `fail_on`, only differences rated at least that severity count for exit 3.
    """
    if any(r.status is CheckStatus.FAILED for r in results):
        return 1
    differing = [r for r in results if r.status in (CheckStatus.DRIFTED,
                                                    CheckStatus.CHANGES_PENDING)]  # fmt: skip
    if fail_on is not None:
        differing = [r for r in differing if at_least(r.severity, fail_on)]
    return 3 if differing else 0
