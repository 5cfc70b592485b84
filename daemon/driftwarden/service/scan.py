"""Run checks on configured stacks now, one stack's failure never stopping the others."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from driftwarden.config import Config, StackConfig
from driftwarden.drift import extract_changes
from driftwarden.engine import EngineError, EngineTarget, project_name
from driftwarden.errors import DriftwardenError
from driftwarden.model import Check, CheckStatus, ResourceChange
from driftwarden.service.runtime import Runtime
from driftwarden.statedir import StateDir
from driftwarden.store.findings import FindingTransition, apply_check
from driftwarden.store.operations import OperationStart, finish_operation, start_operation

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
            "changes": [change.to_dict() for change in self.changes],
        }


def engine_target(stack: StackConfig, state: StateDir) -> EngineTarget:
    return EngineTarget(
        name=stack.name,
        project_dir=stack.project_dir,
        stack=stack.stack,
        backend_url=state.backend_url,
        passphrase_file=state.passphrase_file,
        pulumi_home=state.pulumi_home,
        env=stack.env,
    )


def select_stacks(config: Config, names: Sequence[str]) -> list[StackConfig]:
    if not names:
        return list(config.stacks)
    return [config.stack(name) for name in dict.fromkeys(names)]


def run_check(
    runtime: Runtime,
    stack: StackConfig,
    check: Check,
    *,
    trigger: str = "cli",
    progress: Progress | None = None,
) -> CheckResult:
    """Run one check and record it: `running` first, then its end, changes and findings."""
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
    with runtime.store.write() as session:
        start_operation(
            session,
            audit,
            OperationStart(
                id=result.operation_id, stack=stack.name, project=result.project,
                pulumi_stack=stack.stack, kind=check.value, trigger=trigger,
                actor=runtime.actor, started_at=started,
            ),
        )  # fmt: skip
    try:
        run = runtime.engine.run_check(engine_target(stack, runtime.state), check, progress)
    except DriftwardenError as exc:
        result.error = str(exc)
        result.error_kind = exc.kind.value if isinstance(exc, EngineError) else "error"
        with runtime.store.write() as session:
            finish_operation(
                session, audit, result.operation_id, status="failed", outcome="error",
                error=result.error, error_kind=result.error_kind,
            )  # fmt: skip
        result.duration_seconds = (datetime.now(UTC) - started).total_seconds()
        return result
    except BaseException:
        # Ctrl-C or a crash: the operation must not stay `running`.
        with runtime.store.write() as session:
            finish_operation(
                session, audit, result.operation_id, status="cancelled", outcome="error",
                error="stopped before the engine finished", error_kind="cancelled",
            )  # fmt: skip
        raise
    result.changes = extract_changes(run.events, stack.sensitive_paths)
    result.status = CheckStatus.for_changes(check, bool(result.changes))
    result.cli_version = run.cli_version
    finished = datetime.now(UTC)
    with runtime.store.write() as session:
        finish_operation(
            session, audit, result.operation_id, status="succeeded",
            outcome=result.status.value, changes=result.changes, cli_version=run.cli_version,
            finished_at=finished,
        )  # fmt: skip
        result.transitions = apply_check(
            session, audit, stack=stack.name, check=check.value,
            operation_id=result.operation_id, actor=runtime.actor, changes=result.changes,
            seen_at=finished,
        )  # fmt: skip
    result.duration_seconds = (finished - started).total_seconds()
    return result


def scan(
    runtime: Runtime,
    stacks: Sequence[StackConfig],
    checks: Sequence[Check] | None = None,
    *,
    trigger: str = "cli",
    progress: Callable[[StackConfig, Check, str], None] | None = None,
) -> list[CheckResult]:
    """Each selected stack's checks (or `checks`, when given), in config order."""
    results = []
    for stack in stacks:
        for check in checks or stack.checks:

            def report(message: str, stack: StackConfig = stack, check: Check = check) -> None:
                if progress is not None:
                    progress(stack, check, message)

            report("starting")
            results.append(run_check(runtime, stack, check, trigger=trigger, progress=report))
    return results


def exit_code(results: Sequence[CheckResult]) -> int:
    """SPEC.md: 1 if any check failed, else 3 if any found differences, else 0."""
    if any(r.status is CheckStatus.FAILED for r in results):
        return 1
    if any(r.status in (CheckStatus.DRIFTED, CheckStatus.CHANGES_PENDING) for r in results):
        return 3
    return 0
