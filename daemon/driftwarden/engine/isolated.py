"""Run an engine check in a worker process of its own, so that a timeout or a shutdown
can stop the whole tree (driftwarden's worker, the pulumi CLI, the language host, the
program and its providers): interrupt first, so Pulumi can cancel cleanly, then kill.

The Automation API offers no handle on the processes it starts. The worker leads a
process group, which delivers the interrupt to the pulumi CLI; but pulumi starts every
plugin in a process group of its own, so the kill finds the tree by an environment
variable that the worker sets and every process it starts inherits.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import secrets
import signal
import socket
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from driftwarden.engine.errors import EngineError, EngineErrorKind
from driftwarden.engine.runner import (
    Action,
    CheckRun,
    Engine,
    EngineTarget,
    Progress,
    project_name,
)
from driftwarden.processes import kill_marked, pid_alive

# Between SIGINT (Pulumi cancels gracefully) and SIGKILL.
INTERRUPT_GRACE_SECONDS = 10.0
_POLL_SECONDS = 0.2
# Set in the worker's environment to a token per run; inherited by the whole tree.
ENGINE_RUN_VARIABLE = "DRIFTWARDEN_ENGINE_RUN"


def _worker(
    conn: Connection,
    pulumi_bin: Path | None,
    target: EngineTarget,
    action: Action,
    run_token: str,
) -> None:
    os.setsid()  # our own process group: the pulumi CLI joins it and gets the interrupt
    os.environ[ENGINE_RUN_VARIABLE] = run_token
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=_die_with_parent, args=(os.getppid(), run_token), daemon=True).start()
    try:
        engine = Engine(pulumi_bin)
        run = engine.run(target, action, lambda message: conn.send(("progress", message)))
        conn.send(("done", run))
    except EngineError as exc:
        conn.send(("error", (exc.kind.value, exc.message, exc.hint)))
    except KeyboardInterrupt:
        conn.send(("error", (EngineErrorKind.CANCELLED.value, "interrupted", None)))
    except BaseException as exc:
        conn.send(
            ("error", (EngineErrorKind.ENGINE_ERROR.value, f"{type(exc).__name__}: {exc}", None))
        )
    finally:
        conn.close()


def _die_with_parent(parent: int, run_token: str) -> None:
    """If the daemon is killed (SIGKILL), take the whole engine tree down with it."""
    while os.getppid() == parent:
        time.sleep(1.0)
    kill_marked(ENGINE_RUN_VARIABLE, run_token)
    os.killpg(0, signal.SIGKILL)


class IsolatedEngine:
    """Runs each check in a fresh worker process with a timeout and a cancel switch."""

    def __init__(self, pulumi_bin: Path | None = None) -> None:
        self.pulumi_bin = pulumi_bin
        # spawn, not fork: the daemon has threads, and a forked copy of them is unsafe.
        self._context = multiprocessing.get_context("spawn")

    def run(
        self,
        target: EngineTarget,
        action: Action,
        progress: Progress | None = None,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> CheckRun:
        parent, child = self._context.Pipe(duplex=False)
        run_token = secrets.token_hex(8)
        process = self._context.Process(
            target=_worker,
            args=(child, self.pulumi_bin, target, action, run_token),
            daemon=False,
        )
        process.start()
        child.close()
        deadline = time.monotonic() + timeout
        try:
            while True:
                if parent.poll(_POLL_SECONDS):
                    try:
                        kind, payload = parent.recv()
                    except EOFError:
                        break
                    if kind == "progress":
                        if progress is not None:
                            progress(str(payload))
                        continue
                    if kind == "done":
                        result: CheckRun = payload
                        return result
                    error_kind, message, hint = payload
                    raise EngineError(EngineErrorKind(error_kind), message, hint=hint)
                if not process.is_alive() and not parent.poll():
                    break
                if cancel is not None and cancel.is_set():
                    self._stop(process, target, run_token)
                    raise EngineError(
                        EngineErrorKind.CANCELLED, "stopped: driftwarden is shutting down"
                    )
                if time.monotonic() > deadline:
                    self._stop(process, target, run_token)
                    raise EngineError(
                        EngineErrorKind.TIMED_OUT,
                        f"the check ran longer than its timeout ({timeout:.0f}s) and was stopped",
                        hint="raise the stack's `timeout`, or find what makes the program slow",
                    )
            raise EngineError(
                EngineErrorKind.ENGINE_ERROR,
                f"the engine worker died (exit code {process.exitcode})",
            )
        finally:
            parent.close()
            process.join(timeout=10)  # a finished worker exits on its own
            if process.is_alive():
                self._stop(process, target, run_token)

    def _stop(
        self, process: multiprocessing.process.BaseProcess, target: EngineTarget, run_token: str
    ) -> None:
        """SIGINT to the worker's group, a grace period, then SIGKILL to the whole tree;
        then our stale locks."""
        pid = process.pid
        if pid is None:
            return
        _signal_group(pid, signal.SIGINT)
        process.join(INTERRUPT_GRACE_SECONDS)
        _signal_group(pid, signal.SIGKILL)
        process.join(5)
        # Plugins live in groups of their own, and the tree outlives the worker for a
        # moment: kill what carries the run's token until nothing does.
        for _ in range(100):
            if not kill_marked(ENGINE_RUN_VARIABLE, run_token):
                break
            time.sleep(0.1)
        remove_stale_locks(target)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def remove_stale_locks(target: EngineTarget) -> list[Path]:
    """Delete file-backend locks of `target` that a dead process on this host left.

    Only locks whose recorded host is ours and whose pid is gone: a lock held by a live
    process (ours or anyone's) or taken on another host is respected.
    """
    parsed = urlparse(target.backend_url)
    if parsed.scheme != "file":
        return []
    project = project_name(target.project_dir)
    locks = Path(unquote(parsed.path)) / ".pulumi" / "locks"
    removed = []
    for lock in locks.glob(f"*/{project}/{target.stack}/*.json"):
        try:
            content: dict[str, Any] = json.loads(lock.read_text())
        except (OSError, ValueError):
            continue
        if content.get("hostname") != socket.gethostname():
            continue
        pid = content.get("pid")
        if isinstance(pid, int) and not pid_alive(pid):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
                removed.append(lock)
    return removed
