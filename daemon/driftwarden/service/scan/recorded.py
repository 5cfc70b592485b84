"""One recorded engine run, for a check and for a remediation step alike: under the
stack's lock, the operation is recorded `running`, the engine runs, and the operation
always ends — with the engine's error mapped to its status (a timeout `timed_out`, a
cancel `cancelled`), and `cancelled` when a Ctrl-C or a crash cuts the run or the
caller's recording short. The clock starts once the lock is held: a wait for another
scan of the stack is not part of the run."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from driftwarden.config import StackConfig
from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import ErrorKind, OperationOutcome, OperationStatus, Trigger
from driftwarden.engine.api import Action, CheckRun, project_name
from driftwarden.engine.errors import EngineError
from driftwarden.service.locks import stack_lock
from driftwarden.service.logs import logger
from driftwarden.service.runtime import Runtime
from driftwarden.store.operations import OperationStart, finish_operation, start_operation
from driftwarden.system.failpoints import crash_point

Progress = Callable[[str], None]

STATUS_OF_ERROR = {
    ErrorKind.TIMED_OUT: OperationStatus.TIMED_OUT,
    ErrorKind.CANCELLED: OperationStatus.CANCELLED,
}
STOPPED = "stopped before the engine finished"


def new_operation_id(now: datetime) -> str:
    """Sortable by time, unique across processes: op-20261123T190102Z-9f3a1c2e."""
    return f"op-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


@dataclass
class EngineRun:
    """A run in progress: its operation, and either the engine's `run` or its error."""

    operation_id: str
    project: str
    started_at: datetime
    actor: str
    run: CheckRun | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    finished: bool = False  # the caller recorded the operation's end

    @property
    def failed_status(self) -> OperationStatus:
        """The status a failed run ends with."""
        if self.error_kind is None:
            return OperationStatus.FAILED
        return STATUS_OF_ERROR.get(self.error_kind, OperationStatus.FAILED)


@contextmanager
def recorded_engine_run(
    runtime: Runtime,
    stack: StackConfig,
    action: Action,
    *,
    kind: str,
    trigger: Trigger,
    actor: str,
    cancel: threading.Event | None,
    progress: Progress | None = None,
    wait: bool = True,
    plan_file: Path | None = None,
    crash_prefix: str = "check",
) -> Iterator[EngineRun]:
    """Yields the run with the lock still held: the caller records its end (and sets
    `finished`) in the same transaction as what the run means. An exception out of the
    engine or the caller's block ends the operation `cancelled`, then propagates."""
    with stack_lock(
        runtime.lock_dir, stack.name, store=runtime.store, wait=wait, cancel=cancel,
        on_wait=lambda: progress("waiting for another scan of this stack") if progress else None,
    ):  # fmt: skip
        started = datetime.now(UTC)
        current = EngineRun(new_operation_id(started), project_name(stack.project_dir), started,
                            actor)  # fmt: skip
        runtime.clear_stale_engine_locks(stack)
        with runtime.store.write() as session:
            start_operation(session, runtime.store.audit, OperationStart(
                id=current.operation_id, stack=stack.name, project=current.project,
                pulumi_stack=stack.stack, kind=kind, trigger=trigger, actor=actor,
                started_at=started,
            ))  # fmt: skip
        logger.info("operation started",
                    extra={"stack": stack.name, "check": kind,
                           "operation_id": current.operation_id, "trigger": trigger})  # fmt: skip
        try:
            crash_point(f"{crash_prefix}.before-engine")
            try:
                current.run = runtime.stack_engine(stack, cancel).run(
                    action, progress, plan_file=plan_file
                )
            except DriftwardenError as exc:
                current.error = str(exc)
                current.error_kind = exc.kind if isinstance(exc, EngineError) else ErrorKind.ERROR
            crash_point(f"{crash_prefix}.after-engine")
            yield current
        except BaseException:
            if not current.finished:  # Ctrl-C or a crash: never left `running`
                current.error, current.error_kind = STOPPED, ErrorKind.CANCELLED
                _end_cancelled(runtime, current)
            raise


def _end_cancelled(runtime: Runtime, current: EngineRun) -> None:
    with runtime.store.write() as session:
        finish_operation(session, runtime.store.audit, current.operation_id,
                         status=OperationStatus.CANCELLED, outcome=OperationOutcome.ERROR,
                         error=current.error, error_kind=current.error_kind)  # fmt: skip
    current.finished = True
