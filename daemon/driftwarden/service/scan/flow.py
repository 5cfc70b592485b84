"""The one scan flow, used by `driftwarden scan` and the daemon alike: per stack, ingest
its update history, then per check: run and record it (assessment, findings and queued
notifications in one transaction, `run_check`), then remediate per the stack's policy,
right after the drift check that found the drift, as whoever ran the scan."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field

from driftwarden.config import StackConfig
from driftwarden.domain.model import Check, Trigger
from driftwarden.service.runtime import Runtime
from driftwarden.service.scan.check import CheckResult, run_check
from driftwarden.service.scan.history import ingest_history
from driftwarden.service.scan.remediate import Remediation, maybe_remediate
from driftwarden.service.scan.state_audit import audit_state

Progress = Callable[[StackConfig, Check, str], None]


@dataclass
class StackScan:
    stack: str
    results: list[CheckResult] = field(default_factory=list)
    remediations: list[Remediation] = field(default_factory=list)


def scan_stack(
    runtime: Runtime,
    stack: StackConfig,
    checks: Sequence[Check] | None = None,
    *,
    trigger: Trigger,
    actor: str | None = None,
    wait: bool = True,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
) -> StackScan:
    """The stack's checks (or `checks`), each followed by its remediation, if any. A
    cancel (shutdown) stops before the next check. The whole scan runs with the config
    it started with (a reload on another thread changes the next scan, not this one)."""
    runtime = runtime.pinned()
    done = StackScan(stack.name)
    ingest_history(runtime, stack, cancel)  # who else changed the stack since we last looked
    audit_state(runtime, stack, cancel)  # and what they wrote into its state
    for check in checks or stack.checks:
        if cancel is not None and cancel.is_set():
            break

        def report(message: str, check: Check = check) -> None:
            if progress is not None:
                progress(stack, check, message)

        report("starting")
        result = run_check(runtime, stack, check, trigger=trigger, actor=actor, progress=report,
                           cancel=cancel, wait=wait)  # fmt: skip
        done.results.append(result)
        remediation = maybe_remediate(runtime, stack, result, actor=runtime.actor, cancel=cancel)
        if remediation is not None:
            done.remediations.append(remediation)
    return done


def scan_stacks(
    runtime: Runtime,
    stacks: Sequence[StackConfig],
    checks: Sequence[Check] | None = None,
    *,
    trigger: Trigger = Trigger.CLI,
    wait: bool = True,
    progress: Progress | None = None,
    parallel: int = 1,
) -> list[StackScan]:
    """`scan_stack` for each stack, up to `parallel` stacks at once (each stack's checks
    stay in order, under its lock); the scans come back in config order. An interrupt
    starts no further check and waits for the running ones, which the engine stops."""
    if parallel <= 1 or len(stacks) <= 1:
        return [scan_stack(runtime, stack, checks, trigger=trigger, wait=wait, progress=progress)
                for stack in stacks]  # fmt: skip
    cancel = threading.Event()
    workers = min(parallel, len(stacks))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scan") as pool:
        futures = [
            pool.submit(scan_stack, runtime, stack, checks, trigger=trigger, wait=wait,
                        cancel=cancel, progress=progress)
            for stack in stacks
        ]  # fmt: skip
        try:
            wait_all(futures)
        except KeyboardInterrupt:
            cancel.set()
            for future in futures:
                future.cancel()
            raise
        return [future.result() for future in futures]
