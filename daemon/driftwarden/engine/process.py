"""The engine worker: a process the daemon starts (engine/isolated.py) to serve engine
calls one at a time, in a session and process group of its own, so that a stop reaches
the whole tree it starts.

    python -m driftwarden.engine.process FD RUN_TOKEN PARENT_PID [PULUMI_BIN]

FD is its end of a socket pair with the daemon, carrying pickled requests and replies
(`multiprocessing.connection.Connection`). Only this process loads the Pulumi SDK.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, ParamSpec

from driftwarden.domain.model import ErrorKind
from driftwarden.engine.api import Action, EngineTarget, Progress
from driftwarden.engine.errors import EngineError
from driftwarden.system.processes import kill_marked

if TYPE_CHECKING:
    from driftwarden.engine.runner import Engine

P = ParamSpec("P")

# A worker serves up to this many calls, then exits and a fresh one takes its place: what
# a long-lived interpreter accumulates (caches, fragmentation) stays bounded.
CALLS_PER_WORKER = 100
# Set in the worker's environment to a token per worker; inherited by the whole tree.
ENGINE_RUN_VARIABLE = "DRIFTWARDEN_ENGINE_RUN"


@dataclass(frozen=True)
class Request:
    """One engine call for the worker: a run (check, plan, apply) or a read."""

    call: Literal["run", "history", "modified_times", "export"]
    action: Action | None = None
    plan_file: Path | None = None

    @property
    def what(self) -> str:  # for messages: "the check ran longer than its timeout"
        return {
            "run": "check",
            "history": "history read",
            "modified_times": "state read",
            "export": "state export",
        }[self.call]


def serve_calls(conn: Connection, pulumi_bin: Path | None, run_token: str, parent_pid: int) -> None:
    """Engine calls in a process group of its own. Spawned ahead of the first call (see
    `IsolatedEngine`): it imports the engine and runs `pulumi version` while it waits, then
    serves calls one at a time until it is retired, stopped, or has served
    CALLS_PER_WORKER. Every reply says whether the worker waits for another call."""
    os.environ[ENGINE_RUN_VARIABLE] = run_token
    # A stop is an interrupt however it arrives: SIGINT from the daemon, or SIGTERM sent
    # to every process of the service at once (systemd's default KillMode).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    threading.excepthook = _quiet_when_stopping(threading.excepthook)
    warnings.showwarning = _quiet_when_stopping(warnings.showwarning)
    # The daemon's pid comes from the daemon: read here, after the ~0.5 s of
    # start-up, it may already be init's, and a dead daemon would go unnoticed.
    threading.Thread(target=_die_with_parent, args=(parent_pid, run_token), daemon=True).start()

    def progress(message: str) -> None:
        try:
            conn.send(("progress", message, None))
        except OSError:  # the daemon is gone: nobody to report to, nothing to print
            _end_engine_tree(run_token)

    from driftwarden.engine.runner import Engine, scrub_environment  # the SDK: only here

    scrub_environment()  # this process's own environment, never the caller's
    try:
        engine: Engine | EngineError = Engine(pulumi_bin)
    except EngineError as exc:  # reported as the answer to the request
        engine = exc
    try:
        for served in range(1, CALLS_PER_WORKER + 1):
            try:
                target, request = conn.recv()
            except (EOFError, OSError, KeyboardInterrupt):
                return  # retired, or the daemon stopped first
            if not _serve(conn, run_token, engine, target, request, progress,
                          last=served == CALLS_PER_WORKER):  # fmt: skip
                return
    finally:
        conn.close()


def _serve(
    conn: Connection,
    run_token: str,
    engine: Engine | EngineError,
    target: EngineTarget,
    request: Request,
    progress: Progress,
    *,
    last: bool,
) -> bool:
    """One call, answered with ("done", result, waits) or ("error", details, waits);
    whether the worker waits for another call. After an interrupt or an unexpected
    failure it does not: the engine tree may be half stopped. Nor after the engine
    failed to start: the next call gets a fresh try (the binary may have been fixed)."""
    last = last or isinstance(engine, EngineError)
    try:
        if isinstance(engine, EngineError):
            raise engine
        result: object
        if request.call == "history":
            result = engine.history(target)
        elif request.call == "modified_times":
            result = engine.modified_times(target)
        elif request.call == "export":
            result = engine.export(target)
        else:
            assert request.action is not None
            result = engine.run(target, request.action, progress, plan_file=request.plan_file)
        waits = not last
        _reply(conn, run_token, ("done", result, waits))
    except EngineError as exc:
        waits = not last and exc.kind is not ErrorKind.CANCELLED
        _reply(conn, run_token, ("error", (exc.kind.value, exc.message, exc.hint), waits))
    except KeyboardInterrupt:
        waits = False
        details = (ErrorKind.CANCELLED.value, "interrupted", None)
        _reply(conn, run_token, ("error", details, waits))
    except BaseException as exc:
        waits = False
        message = f"{type(exc).__name__}: {exc}"
        _reply(conn, run_token, ("error", (ErrorKind.ENGINE_ERROR.value, message, None), waits))
    return waits


_stopping = threading.Event()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _stopping.set()
    signal.default_int_handler(signum, frame)


def _quiet_when_stopping(report: Callable[P, object]) -> Callable[P, None]:
    """`report` (a thread's uncaught exception, a warning) unless the worker is being
    stopped: then the Automation API's threads fail on the pipes it closes as it unwinds
    ("I/O operation on closed file", "Error in event stream"), which says nothing about
    the run and would land on the stderr of whoever interrupted it."""

    def reported(*args: P.args, **kwargs: P.kwargs) -> None:
        if not _stopping.is_set():
            report(*args, **kwargs)

    return reported


def _reply(conn: Connection, run_token: str, message: tuple[str, Any, bool]) -> None:
    try:
        conn.send(message)
    except OSError:
        _end_engine_tree(run_token)


def _die_with_parent(parent_pid: int, run_token: str) -> None:
    """If the daemon is killed (SIGKILL), take the whole engine tree down with it."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    _end_engine_tree(run_token)


def _end_engine_tree(run_token: str) -> None:
    """The daemon is gone: kill the engine tree and this worker, quietly."""
    kill_marked(ENGINE_RUN_VARIABLE, run_token)
    os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> None:
    fd, run_token, parent_pid, *pulumi_bin = argv
    serve_calls(Connection(int(fd)), Path(pulumi_bin[0]) if pulumi_bin else None, run_token,
                int(parent_pid))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
