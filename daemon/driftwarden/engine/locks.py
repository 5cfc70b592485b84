"""Pulumi's own lock files in a file backend, and the removal of those a lost run of ours
left behind (a process killed mid-update keeps its lock, and every later update of the
stack would fail `locked`). Used before every engine run, in-process or isolated."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from driftwarden.engine.api import EngineTarget, file_backend_dir, project_name
from driftwarden.system.processes import pid_alive


@dataclass(frozen=True)
class LostRun:
    """An engine run of driftwarden's whose process was lost (killed, its host gone): on
    `host`, between `started` and `ended` (when it was found lost)."""

    host: str
    started: datetime
    ended: datetime


def engine_locks(target: EngineTarget) -> list[Path]:
    """The file-backend lock files of `target` (none for other backends)."""
    backend = file_backend_dir(target.backend_url)
    if backend is None:
        return []
    locks = backend / ".pulumi" / "locks"
    return sorted(locks.glob(f"*/{project_name(target.project_dir)}/{target.stack}/*.json"))


def remove_stale_locks(target: EngineTarget, lost: Sequence[LostRun] = ()) -> list[Path]:
    """Delete file-backend locks of `target` that a dead driftwarden run left.

    A lock of this host whose pid is gone; or a lock of another host taken while one of
    `lost` ran there (the caller holds the stack's database lock: no run of ours lives on
    that stack anywhere). Any other lock — a live process's, a person's `pulumi up` on
    another host — is respected.
    """
    removed = []
    for lock in engine_locks(target):
        try:
            content: dict[str, Any] = json.loads(lock.read_text())
        except (OSError, ValueError):
            continue
        pid = content.get("pid")
        if content.get("hostname") == socket.gethostname():
            stale = isinstance(pid, int) and not pid_alive(pid)
        else:
            stale = _taken_during(content, lost)
        if stale:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
                removed.append(lock)
    return removed


def _taken_during(content: dict[str, Any], lost: Sequence[LostRun]) -> bool:
    try:
        taken = datetime.fromisoformat(str(content.get("timestamp")))
    except ValueError:
        return False
    return any(run.host == content.get("hostname") and run.started <= taken <= run.ended
               for run in lost)  # fmt: skip
