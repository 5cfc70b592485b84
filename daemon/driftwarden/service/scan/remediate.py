"""Guarded remediation: plan, check the plan against the guardrails, act, verify.

`refresh` accepts the live values into state; `up` puts the infrastructure back to the
program (`up --refresh`). Before acting, the exact plan is previewed and judged: too
many changes, a delete, a replace or a protected URN refuses the whole remediation, and
nothing is touched. Every step is an operation and an audit event with its actor.
"""

from __future__ import annotations

import fnmatch
import hashlib
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftwarden.config import RemediationPolicy, StackConfig
from driftwarden.domain.model import (
    AuditAction,
    ChangeKind,
    Check,
    CheckStatus,
    NotificationEvent,
    OperationOutcome,
    OperationStatus,
    PropertyChange,
    RemediationMode,
    RemediationStatus,
    ResourceChange,
    Trigger,
)
from driftwarden.drift import extract_changes
from driftwarden.engine.api import Action, CheckRun
from driftwarden.notify.render import render_remediation
from driftwarden.service.logs import logger
from driftwarden.service.messages.notifications import queue_message
from driftwarden.service.runtime import Runtime
from driftwarden.service.scan.check import CheckResult, run_check
from driftwarden.service.scan.recorded import recorded_engine_run
from driftwarden.store import Session
from driftwarden.store.findings import request_approval
from driftwarden.store.operations import finish_operation
from driftwarden.store.queries import recent_outcomes
from driftwarden.store.remediations import record_remediation
from driftwarden.system.failpoints import crash_point

PLAN_OF = {RemediationMode.REFRESH: Action.PLAN_REFRESH, RemediationMode.UP: Action.PLAN_UP}
APPLY_OF = {RemediationMode.REFRESH: Action.REFRESH, RemediationMode.UP: Action.UP}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reasons: tuple[str, ...] = ()  # "guardrail: what and which resources"


def judge(plan: Sequence[ResourceChange], policy: RemediationPolicy) -> Verdict:
    """The guardrails against the exact plan."""
    reasons = []
    if len(plan) > policy.max_changes:
        names = ", ".join(c.name for c in plan)
        reasons.append(
            f"max_changes: {len(plan)} resources would change, the limit is "
            f"{policy.max_changes} ({names})"
        )
    deletes = [c.name for c in plan if c.change in (ChangeKind.DELETE, ChangeKind.REPLACE)]
    if deletes and not policy.allow_delete:
        reasons.append(f"allow_delete: the plan deletes {', '.join(deletes)}")
    replaces = [c.name for c in plan if c.change == ChangeKind.REPLACE]
    if replaces and not policy.allow_replace:
        reasons.append(f"allow_replace: the plan replaces {', '.join(replaces)}")
    protected = [
        f"{c.name} ({pattern})"
        for c in plan
        for pattern in policy.protect
        if fnmatch.fnmatchcase(c.urn, pattern)
    ]
    if protected:
        reasons.append(f"protect: the plan touches protected {', '.join(protected)}")
    return Verdict(not reasons, tuple(reasons))


@dataclass
class Remediation:
    stack: str
    mode: RemediationMode
    status: RemediationStatus
    plan: list[ResourceChange] = field(default_factory=list)
    verdict: Verdict = Verdict(True)
    plan_operation_id: str | None = None
    apply_operation_id: str | None = None
    verification: CheckResult | None = None
    remaining: list[str] = field(default_factory=list)  # "resource: path" still drifted
    error: str | None = None

    @property
    def command(self) -> str:
        return f"driftwarden remediate {self.stack} --mode {self.mode} --yes"

    def to_dict(self) -> dict[str, Any]:
        """`driftwarden remediate --json`: the plan, the guardrails' verdict, what was
        applied and verified, and what the mode guarantees (`guarantee`)."""
        return {
            "stack": self.stack, "mode": self.mode, "status": self.status,
            "plan": [change.to_dict() for change in self.plan],
            "allowed": self.verdict.allowed, "reasons": list(self.verdict.reasons),
            "plan_operation_id": self.plan_operation_id,
            "apply_operation_id": self.apply_operation_id,
            "verification": self.verification.to_dict() if self.verification else None,
            "remaining": list(self.remaining),
            "guarantee": GUARANTEE_OF[self.mode],
            "error": self.error,
        }  # fmt: skip


# What each mode guarantees between the plan shown and what is applied.
GUARANTEE_OF = {
    # `up --plan`: the engine applies the saved plan's steps and refuses any other.
    RemediationMode.UP: "exact_plan",
    # `refresh` has no plan to hold it to: it accepts whatever is live when it runs.
    RemediationMode.REFRESH: "live_at_apply",
}


def remediate(
    runtime: Runtime,
    stack: StackConfig,
    mode: RemediationMode,
    *,
    actor: str,
    trigger: Trigger,
    approved: bool,
    dry_run: bool = False,
    cancel: threading.Event | None = None,
    confirm: Callable[[Remediation], bool] | None = None,
) -> Remediation:
    """Plan once, judge that plan, and (approved, allowed and, with `confirm`, confirmed
    by whoever saw it) apply exactly it, then verify. Records every step.

    In `up` mode the plan is Pulumi's update plan (`preview --save-plan`), applied with
    `up --plan`: if the world changed since, the engine refuses and nothing beyond the
    plan is done. The plan file lives in the state directory and is deleted at the end.
    """
    plan_file = (
        runtime.plan_dir / f"{secrets.token_hex(8)}.json" if mode is RemediationMode.UP else None
    )
    try:
        return _plan_and_apply(runtime, stack, mode, actor, trigger, approved=approved,
                               dry_run=dry_run, cancel=cancel, confirm=confirm,
                               plan_file=plan_file)  # fmt: skip
    finally:
        if plan_file is not None:
            plan_file.unlink(missing_ok=True)


def _plan_and_apply(
    runtime: Runtime, stack: StackConfig, mode: RemediationMode, actor: str,
    trigger: Trigger, *,
    approved: bool, dry_run: bool, cancel: threading.Event | None,
    confirm: Callable[[Remediation], bool] | None, plan_file: Path | None,
) -> Remediation:  # fmt: skip
    policy = runtime.config.remediation_of(stack)
    result = Remediation(stack.name, mode, RemediationStatus.FAILED)
    plan_op, run, error = _engine_step(
        runtime, stack, PLAN_OF[mode], trigger, actor, cancel, plan_file,
        f"remediation ({mode}) failed: could not plan",
    )  # fmt: skip
    result.plan_operation_id = plan_op
    if run is None:
        result.error = error
        return result
    if plan_file is not None and plan_file.exists():
        plan_file.chmod(0o600)
    result.plan = extract_changes(run.events, stack.sensitive_paths)
    result.verdict = judge(result.plan, policy)
    _record(runtime, stack, result, actor, AuditAction.REMEDIATION_PLANNED, {
        "mode": mode, "resources": [c.urn for c in result.plan],
        "allowed": result.verdict.allowed, "reasons": list(result.verdict.reasons),
        "guarantee": GUARANTEE_OF[mode],
    })  # fmt: skip
    if not result.plan:
        # The engine would change nothing; drift it cannot see may still be there (the
        # Kubernetes provider's diff misses items appended to lists).
        return _verify(runtime, stack, result, actor, cancel, acted=False, dry_run=dry_run)
    if dry_run:
        result.status = RemediationStatus.DRY_RUN
        return result
    if not result.verdict.allowed:
        result.status = RemediationStatus.REFUSED
        refused = Announcement(
            NotificationEvent.REMEDIATION_FAILED,
            f"remediation ({mode}) refused by its guardrails; nothing was changed",
            list(result.verdict.reasons),
        )
        _record(runtime, stack, result, actor, AuditAction.REMEDIATION_REFUSED,
                {"mode": mode, "reasons": list(result.verdict.reasons)}, refused)  # fmt: skip
        return result
    if policy.approval == "manual" and not approved:
        result.status = RemediationStatus.NEEDS_APPROVAL
        lines = [f"{c.name}: {c.change}" for c in result.plan]
        asking = Announcement(NotificationEvent.REMEDIATION_NEEDS_APPROVAL,
                              f"remediation ({mode}) needs approval", lines,
                              command=result.command)  # fmt: skip
        _request_approval(runtime, stack, plan_op, actor, mode, asking)
        return result
    if confirm is not None and not confirm(result):
        result.status = RemediationStatus.DECLINED
        _record(runtime, stack, result, actor, AuditAction.REMEDIATION_DECLINED, {"mode": mode})
        return result
    if approved and trigger is Trigger.CLI:
        _record(runtime, stack, result, actor, AuditAction.REMEDIATION_APPROVED, {"mode": mode})
    apply_op, applied, error = _engine_step(
        runtime, stack, APPLY_OF[mode], trigger, actor, cancel, plan_file,
        f"remediation ({mode}) failed",
    )  # fmt: skip
    result.apply_operation_id = apply_op
    if applied is None:
        result.error = error
        return result
    return _verify(runtime, stack, result, actor, cancel, acted=True, dry_run=False)


def _verify(
    runtime: Runtime,
    stack: StackConfig,
    result: Remediation,
    actor: str,
    cancel: threading.Event | None,
    *,
    acted: bool,
    dry_run: bool,
) -> Remediation:
    """A drift check (outputs-aware, like every drift check) says whether the stack is in
    sync now. Drift left over is `incomplete`, never success."""
    mode = result.mode
    result.verification = run_check(
        runtime, stack, Check.DRIFT, trigger=Trigger.REMEDIATION, actor=actor, cancel=cancel
    )
    verification = result.verification
    if verification.status is CheckStatus.FAILED:
        result.status, result.error = RemediationStatus.FAILED, verification.error
        if not dry_run:  # announces the verification's operation, committed by now
            unverified = Announcement(NotificationEvent.REMEDIATION_FAILED,
                                      f"remediation ({mode}) could not be verified",
                                      [result.error or "?"])  # fmt: skip
            with runtime.store.write() as session:
                operation = result.apply_operation_id or result.plan_operation_id or "none"
                _queue(session, runtime, stack, operation, unverified)
        return result
    in_sync = verification.status is CheckStatus.IN_SYNC
    if not acted and in_sync:
        result.status = RemediationStatus.NOTHING_TO_DO
        return result
    result.status = RemediationStatus.SUCCEEDED if in_sync else RemediationStatus.INCOMPLETE
    result.remaining = [
        f"{c.name}: {p.path or c.change}" for c in verification.changes
        for p in (c.properties or (PropertyChange("", "", None, None),))
    ]  # fmt: skip
    if dry_run:
        return result
    action = AuditAction.REMEDIATION_SUCCEEDED if in_sync else AuditAction.REMEDIATION_INCOMPLETE
    details: dict[str, object] = {
        "mode": mode, "verification_operation_id": verification.operation_id,
        "in_sync": in_sync, "remaining": result.remaining,
    }  # fmt: skip
    if in_sync:
        lines = [f"{c.name}: {c.change}" for c in result.plan]
        done = Announcement(NotificationEvent.REMEDIATION_SUCCEEDED,
                            f"remediation ({mode}) done; the stack is in sync", lines)  # fmt: skip
        _record(runtime, stack, result, actor, action, details, done)
        return result
    headline = (
        f"remediation ({mode}) ran but {len(result.remaining)} difference(s) remain"
        if acted
        else f"remediation ({mode}) cannot undo {len(result.remaining)} difference(s): "
        "the engine's plan does not cover them"
    )
    # Once per distinct leftover: a scan that finds the same leftover again stays quiet.
    key = (
        "incomplete-"
        + hashlib.sha256("\n".join([mode, *sorted(result.remaining)]).encode()).hexdigest()[:16]
    )
    left = Announcement(NotificationEvent.REMEDIATION_FAILED, headline, result.remaining,
                        key=None if acted else key)  # fmt: skip
    _record(runtime, stack, result, actor, action, details, left)
    return result


def maybe_remediate(
    runtime: Runtime,
    stack: StackConfig,
    result: CheckResult,
    *,
    actor: str,
    cancel: threading.Event | None = None,
) -> Remediation | None:
    """After a drift check: remediate if the stack's policy says so."""
    policy = runtime.config.remediation_of(stack)
    if policy.policy == "none" or result.check is not Check.DRIFT:
        return None
    if result.status is not CheckStatus.DRIFTED:
        return None
    with runtime.store.read() as session:
        outcomes = recent_outcomes(session, stack.name, Check.DRIFT.value,
                                   limit=policy.after_consecutive)  # fmt: skip
    streak = 0
    for outcome in outcomes:
        if outcome != OperationOutcome.DRIFTED:
            break
        streak += 1
    if streak < policy.after_consecutive:
        logger.info("drift not yet persistent enough to remediate",
                    extra={"stack": stack.name, "seen": streak,
                           "after_consecutive": policy.after_consecutive})  # fmt: skip
        return None
    return remediate(runtime, stack, RemediationMode(policy.policy), actor=actor,
                     trigger=Trigger.REMEDIATION,
                     approved=False, cancel=cancel)  # fmt: skip


def _engine_step(
    runtime: Runtime,
    stack: StackConfig,
    action: Action,
    trigger: Trigger,
    actor: str,
    cancel: threading.Event | None,
    plan_file: Path | None,
    failure: str,
) -> tuple[str, CheckRun | None, str | None]:
    """One recorded engine run (plan or apply) under the stack's lock: the operation, the
    run (None when it failed: announced with the headline `failure`) and its error."""
    with recorded_engine_run(
        runtime, stack, action, kind=action.value, trigger=trigger, actor=actor, cancel=cancel,
        plan_file=plan_file, crash_prefix="remediation",
    ) as current:  # fmt: skip
        run = current.run
        status, outcome = current.failed_status, OperationOutcome.ERROR
        changes: list[ResourceChange] = []
        version = None
        if run is not None:
            status, version = OperationStatus.SUCCEEDED, run.cli_version
            outcome = (OperationOutcome.PLANNED if action in PLAN_OF.values()
                       else OperationOutcome.APPLIED)  # fmt: skip
            changes = extract_changes(run.events, stack.sensitive_paths)
        with runtime.store.write() as session:
            finish_operation(session, runtime.store.audit, current.operation_id, status=status,
                             outcome=outcome, changes=changes, cli_version=version,
                             error=current.error, error_kind=current.error_kind)  # fmt: skip
            if run is None:
                failed = Announcement(NotificationEvent.REMEDIATION_FAILED, failure,
                                      [current.error or "?"])  # fmt: skip
                _queue(session, runtime, stack, current.operation_id, failed)
            crash_point("remediation.before-commit")
        current.finished = True
    return current.operation_id, run, current.error


@dataclass(frozen=True)
class Announcement:
    """A remediation message: queued once per `key` (default: the operation) and target,
    in the transaction of the record it announces."""

    event: NotificationEvent
    headline: str
    lines: Sequence[str]
    command: str | None = None
    key: str | None = None


def _request_approval(
    runtime: Runtime, stack: StackConfig, operation_id: str, actor: str, mode: str,
    asking: Announcement,
) -> None:  # fmt: skip
    """Mark the open drift findings `needs approval`; announced the first time only."""
    with runtime.store.write() as session:
        marked = request_approval(session, runtime.store.audit, stack.name, Check.DRIFT.value,
                                  operation_id=operation_id, actor=actor, mode=mode)  # fmt: skip
        if marked:
            _queue(session, runtime, stack, operation_id, asking)


def _record(
    runtime: Runtime, stack: StackConfig, result: Remediation, actor: str,
    action: AuditAction, details: dict[str, object], announce: Announcement | None = None,
) -> None:  # fmt: skip
    """An audit event of the remediation, and its message, committed together."""
    operation_id = result.apply_operation_id or result.plan_operation_id
    with runtime.store.write() as session:
        record_remediation(session, runtime.store.audit, actor=actor, stack=stack.name,
                           operation_id=operation_id, action=action, details=details)  # fmt: skip
        if announce is not None:
            _queue(session, runtime, stack, operation_id or "none", announce)
        crash_point("remediation.before-commit")
    if announce is not None:
        logger.info("remediation", extra={"stack": stack.name, "event": announce.event,
                                          "actor": actor})  # fmt: skip


def _queue(
    session: Session, runtime: Runtime, stack: StackConfig, operation_id: str,
    announce: Announcement,
) -> None:  # fmt: skip
    message = render_remediation(stack.name, announce.event, announce.headline, announce.lines,
                                 announce.command)  # fmt: skip
    cause = f"{stack.name}:{announce.key}" if announce.key else operation_id
    queue_message(session, message, runtime.config.targets_of(stack), cause=cause,
                  stack=stack.name, operation_id=operation_id)  # fmt: skip
