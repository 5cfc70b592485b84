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
from datetime import UTC, datetime
from pathlib import Path

from driftwarden.config import RemediationPolicy, StackConfig
from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import (
    AuditAction,
    ChangeKind,
    Check,
    CheckStatus,
    NotificationEvent,
    OperationOutcome,
    OperationStatus,
    PropertyChange,
    ResourceChange,
    Trigger,
)
from driftwarden.drift import extract_changes
from driftwarden.engine.api import Action, CheckRun, project_name
from driftwarden.engine.errors import EngineError
from driftwarden.notify.render import Message, render_remediation
from driftwarden.service.locks import stack_lock
from driftwarden.service.logs import logger
from driftwarden.service.runtime import Runtime
from driftwarden.service.scan import CheckResult, new_operation_id, run_check
from driftwarden.store.findings import request_approval
from driftwarden.store.operations import OperationStart, finish_operation, start_operation
from driftwarden.store.outbox import enqueue
from driftwarden.store.queries import recent_outcomes
from driftwarden.store.remediations import record_remediation
from driftwarden.system.failpoints import crash_point

PLAN_OF = {"refresh": Action.PLAN_REFRESH, "up": Action.PLAN_UP}
APPLY_OF = {"refresh": Action.REFRESH, "up": Action.UP}


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
    mode: str
    # nothing_to_do | dry_run | refused | needs_approval | declined | succeeded | incomplete
    # | failed
    status: str
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


# What each mode guarantees between the plan shown and what is applied.
GUARANTEE_OF = {
    # `up --plan`: the engine applies the saved plan's steps and refuses any other.
    "up": "exact_plan",
    # `refresh` has no plan to hold it to: it accepts whatever is live when it runs.
    "refresh": "live_at_apply",
}


def remediate(
    runtime: Runtime,
    stack: StackConfig,
    mode: str,
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
    plan_file = runtime.plan_dir / f"{secrets.token_hex(8)}.json" if mode == "up" else None
    try:
        return _plan_and_apply(runtime, stack, mode, actor, trigger, approved=approved,
                               dry_run=dry_run, cancel=cancel, confirm=confirm,
                               plan_file=plan_file)  # fmt: skip
    finally:
        if plan_file is not None:
            plan_file.unlink(missing_ok=True)


def _plan_and_apply(
    runtime: Runtime, stack: StackConfig, mode: str, actor: str, trigger: Trigger, *,
    approved: bool, dry_run: bool, cancel: threading.Event | None,
    confirm: Callable[[Remediation], bool] | None, plan_file: Path | None,
) -> Remediation:  # fmt: skip
    policy = runtime.config.remediation_of(stack)
    result = Remediation(stack.name, mode, "failed")
    plan_op, run, error = _engine_step(runtime, stack, PLAN_OF[mode], trigger, actor, cancel,
                                       plan_file)  # fmt: skip
    result.plan_operation_id = plan_op
    if run is None:
        result.error = error
        _announce(runtime, stack, result, actor, NotificationEvent.REMEDIATION_FAILED,
                  f"remediation ({mode}) failed: could not plan", [error or "?"])  # fmt: skip
        return result
    if plan_file is not None and plan_file.exists():
        plan_file.chmod(0o600)
    result.plan = extract_changes(run.events, stack.sensitive_paths)
    result.verdict = judge(result.plan, policy)
    _record(runtime, actor, AuditAction.REMEDIATION_PLANNED, stack.name, plan_op, {
        "mode": mode, "resources": [c.urn for c in result.plan],
        "allowed": result.verdict.allowed, "reasons": list(result.verdict.reasons),
        "guarantee": GUARANTEE_OF[mode],
    })  # fmt: skip
    if not result.plan:
        # The engine would change nothing; drift it cannot see may still be there (the
        # Kubernetes provider's diff misses items appended to lists).
        return _verify(runtime, stack, result, actor, cancel, acted=False, dry_run=dry_run)
    if dry_run:
        result.status = "dry_run"
        return result
    if not result.verdict.allowed:
        result.status = "refused"
        _record(runtime, actor, AuditAction.REMEDIATION_REFUSED, stack.name, plan_op,
                {"mode": mode, "reasons": list(result.verdict.reasons)})  # fmt: skip
        _announce(runtime, stack, result, actor, NotificationEvent.REMEDIATION_FAILED,
                  f"remediation ({mode}) refused by its guardrails; nothing was changed",
                  list(result.verdict.reasons))  # fmt: skip
        return result
    if policy.approval == "manual" and not approved:
        result.status = "needs_approval"
        if _request_approval(runtime, stack, plan_op, actor, mode):
            lines = [f"{c.name}: {c.change}" for c in result.plan]
            headline = f"remediation ({mode}) needs approval"
            _announce(runtime, stack, result, actor, NotificationEvent.REMEDIATION_NEEDS_APPROVAL,
                      headline, lines, command=result.command)  # fmt: skip
        return result
    if confirm is not None and not confirm(result):
        result.status = "declined"
        _record(runtime, actor, AuditAction.REMEDIATION_DECLINED, stack.name, plan_op,
                {"mode": mode})  # fmt: skip
        return result
    if approved and trigger is Trigger.CLI:
        _record(runtime, actor, AuditAction.REMEDIATION_APPROVED, stack.name, plan_op,
                {"mode": mode})  # fmt: skip
    apply_op, applied, error = _engine_step(runtime, stack, APPLY_OF[mode], trigger, actor,
                                            cancel, plan_file)  # fmt: skip
    result.apply_operation_id = apply_op
    if applied is None:
        result.error = error
        _announce(runtime, stack, result, actor, NotificationEvent.REMEDIATION_FAILED,
                  f"remediation ({mode}) failed", [error or "?"])  # fmt: skip
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
        result.status, result.error = "failed", verification.error
        if not dry_run:
            headline = f"remediation ({mode}) could not be verified"
            _announce(runtime, stack, result, actor, NotificationEvent.REMEDIATION_FAILED,
                      headline, [result.error or "?"])  # fmt: skip
        return result
    in_sync = verification.status is CheckStatus.IN_SYNC
    if not acted and in_sync:
        result.status = "nothing_to_do"
        return result
    result.status = "succeeded" if in_sync else "incomplete"
    result.remaining = [
        f"{c.name}: {p.path or c.change}" for c in verification.changes
        for p in (c.properties or (PropertyChange("", "", None, None),))
    ]  # fmt: skip
    if dry_run:
        return result
    operation = result.apply_operation_id or result.plan_operation_id
    action = AuditAction.REMEDIATION_SUCCEEDED if in_sync else AuditAction.REMEDIATION_INCOMPLETE
    _record(runtime, actor, action, stack.name, operation, {
        "mode": mode, "verification_operation_id": verification.operation_id,
        "in_sync": in_sync, "remaining": result.remaining,
    })  # fmt: skip
    if in_sync:
        lines = [f"{c.name}: {c.change}" for c in result.plan]
        _announce(runtime, stack, result, actor, NotificationEvent.REMEDIATION_SUCCEEDED,
                  f"remediation ({mode}) done; the stack is in sync", lines)  # fmt: skip
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
    _announce(runtime, stack, result, actor, NotificationEvent.REMEDIATION_FAILED, headline,
              result.remaining, key=None if acted else key)  # fmt: skip
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
    return remediate(runtime, stack, policy.policy, actor=actor, trigger=Trigger.REMEDIATION,
                     approved=False, cancel=cancel)  # fmt: skip


def _engine_step(
    runtime: Runtime,
    stack: StackConfig,
    action: Action,
    trigger: Trigger,
    actor: str,
    cancel: threading.Event | None,
    plan_file: Path | None = None,
) -> tuple[str, CheckRun | None, str | None]:
    """One recorded engine run (plan or apply) under the stack's lock."""
    started = datetime.now(UTC)
    operation_id = new_operation_id(started)
    with stack_lock(runtime.lock_dir, stack.name, store=runtime.store, cancel=cancel):
        runtime.clear_stale_engine_locks(stack)
        with runtime.store.write() as session:
            start_operation(session, runtime.store.audit, OperationStart(
                operation_id, stack.name, project_name(stack.project_dir), stack.stack,
                action.value, trigger, actor, started))  # fmt: skip
        crash_point("remediation.before-engine")
        try:
            run = runtime.stack_engine(stack, cancel).run(action, plan_file=plan_file)
        except DriftwardenError as exc:
            kind = exc.kind.value if isinstance(exc, EngineError) else "error"
            with runtime.store.write() as session:
                finish_operation(session, runtime.store.audit, operation_id,
                                 status=OperationStatus.FAILED, outcome=OperationOutcome.ERROR,
                                 error=str(exc), error_kind=kind)  # fmt: skip
            return operation_id, None, str(exc)
        crash_point("remediation.after-engine")
    changes = extract_changes(run.events, stack.sensitive_paths)
    with runtime.store.write() as session:
        finish_operation(session, runtime.store.audit, operation_id,
                         status=OperationStatus.SUCCEEDED,
                         outcome=OperationOutcome.PLANNED if action in PLAN_OF.values()
                         else OperationOutcome.APPLIED,
                         changes=changes, cli_version=run.cli_version)  # fmt: skip
    return operation_id, run, None


def _request_approval(
    runtime: Runtime, stack: StackConfig, operation_id: str, actor: str, mode: str
) -> bool:
    """Mark the open drift findings `needs approval`; True the first time (notify once)."""
    with runtime.store.write() as session:
        marked = request_approval(session, runtime.store.audit, stack.name, Check.DRIFT.value,
                                  operation_id=operation_id, actor=actor, mode=mode)  # fmt: skip
    return bool(marked)


def _record(
    runtime: Runtime, actor: str, action: AuditAction, stack: str, operation_id: str | None,
    details: dict[str, object],
) -> None:  # fmt: skip
    with runtime.store.write() as session:
        record_remediation(session, runtime.store.audit, actor=actor, stack=stack,
                           operation_id=operation_id, action=action, details=details)  # fmt: skip


def _announce(
    runtime: Runtime,
    stack: StackConfig,
    result: Remediation,
    actor: str,
    event: NotificationEvent,
    headline: str,
    lines: Sequence[str],
    command: str | None = None,
    key: str | None = None,
) -> None:
    """Queue a remediation message for the stack's targets, once per `key` (default: the
    operation) and target."""
    message: Message = render_remediation(stack.name, event, headline, lines, command)
    operation = result.apply_operation_id or result.plan_operation_id or "none"
    cause = f"{stack.name}:{key}" if key else operation
    with runtime.store.write() as session:
        for target in runtime.config.targets_of(stack):
            if event in target.events:
                enqueue(session, key=f"{cause}:{target.name}:{event}", target=target.name,
                        event=event, title=message.title, markdown=message.markdown,
                        text=message.text, stack=stack.name, operation_id=operation)  # fmt: skip
    logger.info("remediation", extra={"stack": stack.name, "event": event, "actor": actor})
