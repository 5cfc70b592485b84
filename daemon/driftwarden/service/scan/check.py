"""Run checks on configured stacks now, one stack's failure never stopping the others."""

from __future__ import annotations

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
    ErrorKind,
    FindingTransition,
    OperationOutcome,
    OperationStatus,
    ResourceChange,
    Severity,
    Trigger,
)
from driftwarden.domain.platform import ManagedRef
from driftwarden.drift import extract_changes
from driftwarden.drift.lifecycle import FindingRecord
from driftwarden.drift.noise import without_noise
from driftwarden.drift.rules import Assessment, assess_change, at_least, highest, severity_rank
from driftwarden.engine.api import Action, CheckRun
from driftwarden.service.logs import logger
from driftwarden.service.messages.notifications import queue_for_check
from driftwarden.service.runtime import Runtime
from driftwarden.service.scan.attribution import attribute
from driftwarden.service.scan.recorded import EngineRun, recorded_engine_run
from driftwarden.service.sources.platform import sources_of, survey
from driftwarden.store.findings import apply_check, open_finding_records
from driftwarden.store.operations import finish_operation
from driftwarden.store.platform import replace_managed
from driftwarden.system.failpoints import crash_point

Progress = Callable[[str], None]


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
    error_kind: ErrorKind | None = None
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
    with recorded_engine_run(
        runtime, stack, Action.of(check), kind=check.value, trigger=trigger, actor=actor,
        cancel=cancel, progress=progress, wait=wait,
    ) as current:  # fmt: skip
        result = CheckResult(
            stack=stack.name, project=current.project, pulumi_stack=stack.stack, check=check,
            status=CheckStatus.FAILED, operation_id=current.operation_id,
            started_at=current.started_at,
        )  # fmt: skip
        if current.run is None:
            result.error, result.error_kind = current.error, current.error_kind
            _finish(runtime, stack, result, current, status=current.failed_status,
                    outcome=OperationOutcome.ERROR)  # fmt: skip
            return result
        _assess(runtime, stack, result, current, current.run, cancel)
        return result


def _assess(
    runtime: Runtime,
    stack: StackConfig,
    result: CheckResult,
    current: EngineRun,
    run: CheckRun,
    cancel: threading.Event | None,
) -> None:
    """What the engine's run means: the changes, rated and attributed, recorded. The
    stack's open findings are read once, for the attribution and the fold alike (the
    stack's lock holds them still)."""
    check, started = result.check, result.started_at
    with runtime.store.read() as session:
        open_now = open_finding_records(session, stack.name)
    known = {(f.urn, f.path): f.attribution for f in open_now if f.check == check.value}
    changes = findings_of_run(runtime.config, stack, check, run.events)
    surveyed = None
    if check is Check.DRIFT and sources_of(runtime.config, stack):
        try:
            surveyed = survey(runtime, stack, run.events, now=started)
        except DriftwardenError as exc:  # a list that did not come back resolves nothing
            result.error, result.error_kind = f"audit source: {exc}", ErrorKind.AUDIT_SOURCE
            _finish(runtime, stack, result, current, status=OperationStatus.FAILED,
                    outcome=OperationOutcome.ERROR)  # fmt: skip
            return
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
            refs=surveyed.refs if surveyed else None, known=known,
        )  # fmt: skip
    except DriftwardenError as exc:  # attribution informs; it never fails a check
        logger.warning("attribution failed", extra={"stack": stack.name, "error": str(exc)})
    if surveyed is not None:
        result.attributions |= surveyed.attributions
    _finish(runtime, stack, result, current, status=OperationStatus.SUCCEEDED,
            outcome=result.status.outcome, open_now=open_now,
            managed=list(surveyed.refs.values()) if surveyed else None)  # fmt: skip


def _finish(
    runtime: Runtime,
    stack: StackConfig,
    result: CheckResult,
    current: EngineRun,
    *,
    status: OperationStatus,
    outcome: OperationOutcome,
    managed: Sequence[ManagedRef] | None = None,
    open_now: Sequence[FindingRecord] = (),
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
                operation_id=result.operation_id, actor=current.actor,
                changes=result.changes, seen_at=finished,
                attributions=result.attributions,
                assess=lambda obs: result.ratings.get(obs.urn, {}).get(obs.path),
                open_now=open_now,
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
    current.finished = True
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
