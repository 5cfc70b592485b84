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
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from driftwarden.domain.model import ErrorKind, StackUpdate
from driftwarden.engine.api import (
    Action,
    CheckRun,
    EngineTarget,
    Progress,
)
from driftwarden.engine.errors import EngineError
from driftwarden.engine.locks import remove_stale_locks
from driftwarden.engine.process import ENGINE_RUN_VARIABLE, Request
from driftwarden.system.processes import kill_marked

# Between SIGINT (Pulumi cancels gracefully) and SIGKILL.
INTERRUPT_GRACE_SECONDS = 10.0
_POLL_SECONDS = 0.2
# How long a waiting worker waits for a call before it is retired.
SPARE_IDLE_SECONDS = 60.0


@dataclass
class _Worker:
    """A spawned worker: the pipe's parent end, its token, and since when it waits."""

    process: subprocess.Popen[bytes]
    conn: Connection
    run_token: str
    idle_since: float


class IsolatedEngine:
    """Runs each engine call in a worker process with a timeout and a cancel switch.

    Starting a worker costs an interpreter, the engine's imports and `pulumi version`
    (about a second of CPU, which on a busy machine the engines it runs compete for). So
    up to `spares` workers are kept: started ahead, they wait for a call, and a worker
    whose call ended normally waits for the next one (its stack selections kept). A
    worker whose call was stopped (timeout, cancel) is killed with its whole tree and
    replaced. Workers waiting longer than `SPARE_IDLE_SECONDS` are retired
    (`retire_idle`): an idle daemon keeps no engine processes. With `spares=0` every
    call gets a fresh worker that exits after it.
    """

    def __init__(self, pulumi_bin: Path | None = None, *, spares: int = 0) -> None:
        self.pulumi_bin = pulumi_bin
        self.spares = spares
        self._waiting: list[_Worker] = []
        self._busy = 0
        self._lock = threading.Lock()

    def _spawn(self) -> _Worker:
        """A fresh interpreter running engine/process.py, not a fork (the daemon has
        threads, and a forked copy of them is unsafe) and not multiprocessing's spawn
        (which re-imports the daemon's main module in the worker and keeps a resource
        tracker process alive beside the daemon)."""
        ours, theirs = socket.socketpair()
        run_token = secrets.token_hex(8)
        argv = [sys.executable, "-m", "driftwarden.engine.process", str(theirs.fileno()),
                run_token, str(os.getpid())]  # fmt: skip
        if self.pulumi_bin is not None:
            argv.append(str(self.pulumi_bin))
        with theirs:
            # A session of its own: its group gets the interrupt, and the pulumi CLI joins it.
            process = subprocess.Popen(
                argv, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, start_new_session=True
            )
        return _Worker(process, Connection(ours.detach()), run_token, time.monotonic())

    def _take(self) -> _Worker:
        """A waiting worker (else a new one); the spares are topped up behind it."""
        with self._lock:
            while self._waiting:
                worker = self._waiting.pop()  # the most recently used: the others retire
                if _alive(worker.process):
                    break
                worker.conn.close()
            else:
                worker = self._spawn()
            self._busy += 1
            self._top_up()
        return worker

    def _top_up(self) -> None:
        """Start workers ahead until `spares` exist (busy or waiting). Holds the lock."""
        while len(self._waiting) + self._busy < self.spares:
            self._waiting.append(self._spawn())

    def _give_back(self, worker: _Worker | None) -> None:
        """A call ended: its worker (None if it was not reusable) waits for the next."""
        retired = []
        with self._lock:
            self._busy -= 1
            if worker is not None:
                if len(self._waiting) + self._busy < self.spares:
                    worker.idle_since = time.monotonic()
                    self._waiting.append(worker)
                else:
                    retired.append(worker)
            self._top_up()
        _retire(retired)

    def start_ahead(self) -> None:
        """Start the spare workers now, before the first call needs one: their interpreter
        and engine start overlap whatever the caller does meanwhile."""
        with self._lock:
            self._top_up()

    def retire_idle(self, now: float | None = None) -> None:
        """End the workers that waited longer than SPARE_IDLE_SECONDS."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [w for w in self._waiting if now - w.idle_since > SPARE_IDLE_SECONDS]
            self._waiting = [w for w in self._waiting if w not in idle]
        _retire(idle)

    def close(self) -> None:
        """End every waiting worker (a worker reads the closed pipe and exits)."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        _retire(waiting)

    def run(
        self,
        target: EngineTarget,
        action: Action,
        progress: Progress | None = None,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
        plan_file: Path | None = None,
    ) -> CheckRun:
        run: CheckRun = self._call(target, Request("run", action, plan_file), progress,
                                   timeout=timeout, cancel=cancel)  # fmt: skip
        return run

    def history(
        self, target: EngineTarget, *, timeout: float, cancel: threading.Event | None = None
    ) -> list[StackUpdate]:
        """`Engine.history`, isolated: a backend that hangs is stopped like a check."""
        updates: list[StackUpdate] = self._call(target, Request("history"), None,
                                                timeout=timeout, cancel=cancel)  # fmt: skip
        return updates

    def export(
        self, target: EngineTarget, *, timeout: float, cancel: threading.Event | None = None
    ) -> dict[str, Any]:
        """`Engine.export` (the state, secrets as ciphertext), isolated."""
        deployment: dict[str, Any] = self._call(target, Request("export"), None,
                                                timeout=timeout, cancel=cancel)  # fmt: skip
        return deployment

    def modified_times(
        self, target: EngineTarget, *, timeout: float, cancel: threading.Event | None = None
    ) -> dict[str, datetime]:
        """`Engine.modified_times` (a state export), isolated."""
        times: dict[str, datetime] = self._call(target, Request("modified_times"), None,
                                                timeout=timeout, cancel=cancel)  # fmt: skip
        return times

    def _call(
        self,
        target: EngineTarget,
        request: Request,
        progress: Progress | None,
        *,
        timeout: float,
        cancel: threading.Event | None,
    ) -> Any:
        worker = self._send(self._take(), (target, request))
        parent, process, run_token = worker.conn, worker.process, worker.run_token
        deadline = time.monotonic() + timeout
        waits = False  # whether the worker, its call over, waits for another
        try:
            while True:
                if parent.poll(_POLL_SECONDS):
                    try:
                        kind, payload, worker_waits = parent.recv()
                    except EOFError:
                        break
                    if kind == "progress":
                        if progress is not None:
                            progress(str(payload))
                        continue
                    waits = bool(worker_waits)
                    if kind == "done":
                        return payload
                    error_kind, message, hint = payload
                    if cancel is not None and cancel.is_set():
                        waits = False
                        raise _stopped()  # the engine failed because it was being stopped
                    raise EngineError(ErrorKind(error_kind), message, hint=hint)
                if not _alive(process) and not parent.poll():
                    break
                if cancel is not None and cancel.is_set():
                    self._stop(process, target, run_token)
                    raise _stopped()
                if time.monotonic() > deadline:
                    self._stop(process, target, run_token)
                    raise EngineError(
                        ErrorKind.TIMED_OUT,
                        f"the {request.what} ran longer than its timeout ({timeout:.0f}s) "
                        "and was stopped",
                        hint="raise the stack's `timeout`, or find what makes the engine slow",
                    )
            _join(process, 5)
            if (cancel is not None and cancel.is_set()) or process.returncode in _STOP_EXITS:
                raise _stopped()  # e.g. SIGTERM to every process of the service at once
            raise EngineError(
                ErrorKind.ENGINE_ERROR,
                f"the engine worker died (exit code {process.returncode})",
            )
        except KeyboardInterrupt:  # Ctrl-C in the CLI: its worker has a session of its own
            waits = False
            self._stop(process, target, run_token)
            raise
        finally:
            reusable = waits and self.spares > 0 and _alive(process)
            if not reusable:
                parent.close()
                _join(process, 10)  # a finished worker exits on its own
                if _alive(process):
                    self._stop(process, target, run_token)
            self._give_back(worker if reusable else None)

    def _send(self, worker: _Worker, call: tuple[EngineTarget, Request]) -> _Worker:
        """`call` sent to `worker`, or to a fresh one if it died waiting (seen: killed by
        hand); the worker that has it."""
        try:
            worker.conn.send(call)
        except OSError:
            worker.conn.close()
            worker = self._spawn()
            worker.conn.send(call)
        return worker

    def _stop(self, process: subprocess.Popen[bytes], target: EngineTarget, run_token: str) -> None:
        """SIGINT to the worker's group, a grace period (cut short by another Ctrl-C),
        then SIGKILL to the whole tree; then our stale locks. No interrupt stops the
        kill half way: that is what would leave the tree running."""
        _signal_group(process.pid, signal.SIGINT)
        interrupted = False
        try:
            _join(process, INTERRUPT_GRACE_SECONDS)
        except KeyboardInterrupt:
            interrupted = True
        with _interrupts_held():
            _signal_group(process.pid, signal.SIGKILL)
            _join(process, 5)
            # Plugins live in groups of their own, and the tree outlives the worker for a
            # moment: kill what carries the run's token until nothing does.
            for _ in range(100):
                if not kill_marked(ENGINE_RUN_VARIABLE, run_token):
                    break
                time.sleep(0.1)
            remove_stale_locks(target)
        if interrupted:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """SIGINT (and SIGTERM) wait until the block ends; in the main thread only, where
    Python runs signal handlers (elsewhere nothing is to be held)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _retire(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.conn.close()  # its recv() ends: it exits without running anything
    for worker in workers:
        _join(worker.process, 5)
        if _alive(worker.process):
            _signal_group(worker.process.pid, signal.SIGKILL)
            _join(worker.process, 5)


def _alive(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is None


def _join(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait up to `timeout` for `process` to end (and reap it)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)


# A worker killed by SIGTERM or SIGINT was stopped, not broken.
_STOP_EXITS = (-signal.SIGTERM, -signal.SIGINT)


def _stopped() -> EngineError:
    return EngineError(ErrorKind.CANCELLED, "stopped: driftwarden is shutting down")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
