"""Run checks on configured stacks now, one stack's failure never stopping the others."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from driftwarden.config import Config, StackConfig
from driftwarden.drift import extract_changes
from driftwarden.engine import Engine, EngineError, EngineTarget, project_name
from driftwarden.errors import DriftwardenError
from driftwarden.model import Check, CheckStatus, ResourceChange
from driftwarden.statedir import StateDir

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
    engine: Engine,
    stack: StackConfig,
    state: StateDir,
    check: Check,
    progress: Progress | None = None,
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
    try:
        run = engine.run_check(engine_target(stack, state), check, progress)
    except DriftwardenError as exc:
        result.error = str(exc)
        result.error_kind = exc.kind.value if isinstance(exc, EngineError) else "error"
        result.duration_seconds = (datetime.now(UTC) - started).total_seconds()
        return result
    result.changes = extract_changes(run.events, stack.sensitive_paths)
    result.status = CheckStatus.for_changes(check, bool(result.changes))
    result.duration_seconds = run.duration_seconds
    result.cli_version = run.cli_version
    return result


def scan(
    state: StateDir,
    engine: Engine,
    stacks: Sequence[StackConfig],
    checks: Sequence[Check] | None = None,
    progress: Callable[[StackConfig, Check, str], None] | None = None,
) -> list[CheckResult]:
    """Each selected stack's checks (or `checks`, when given), in config order."""
    state.ensure()
    results = []
    for stack in stacks:
        for check in checks or stack.checks:

            def report(message: str, stack: StackConfig = stack, check: Check = check) -> None:
                if progress is not None:
                    progress(stack, check, message)

            report("starting")
            results.append(run_check(engine, stack, state, check, report))
    return results


def exit_code(results: Sequence[CheckResult]) -> int:
    """SPEC.md: 1 if any check failed, else 3 if any found differences, else 0."""
    if any(r.status is CheckStatus.FAILED for r in results):
        return 1
    if any(r.status in (CheckStatus.DRIFTED, CheckStatus.CHANGES_PENDING) for r in results):
        return 3
    return 0
