"""A file backend's states, read from its files without the engine: the checkpoint each
update left in the stack's history (`.pulumi/history/PROJECT/STACK/STACK-N.checkpoint.json`,
in the order the backend numbers them) and the stack's current state
(`.pulumi/stacks/PROJECT/STACK.json`). Other backends keep no per-update checkpoint: there
the state export is compared with the one read before (service/scan/state_audit.py)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftwarden.engine.api import EngineTarget, file_backend_dir, project_name

_CHECKPOINT = ".checkpoint.json"


@dataclass(frozen=True)
class Checkpoint:
    """One state: its resources and a digest of them (what makes two states the same)."""

    resources: list[dict[str, Any]]
    digest: str


@dataclass(frozen=True)
class UpdateCheckpoint:
    """The state an update left, with what names the update in the history: its kind and
    its start (seconds: a file backend numbers no updates)."""

    kind: str
    start_time: datetime
    state: Checkpoint


def _stack_dirs(target: EngineTarget) -> tuple[Path, Path] | None:
    backend = file_backend_dir(target.backend_url)
    if backend is None:
        return None
    root = backend / ".pulumi"
    project = project_name(target.project_dir)
    history = root / "history" / project / target.stack
    current = root / "stacks" / project / f"{target.stack}.json"
    if not history.is_dir():  # a backend of before projects: no project level
        history, current = root / "history" / target.stack, root / "stacks" / f"{target.stack}.json"
    return history, current


def update_checkpoints(target: EngineTarget) -> list[UpdateCheckpoint]:
    """Every update's checkpoint, oldest first; [] for a backend that is not a directory."""
    dirs = _stack_dirs(target)
    if dirs is None or not dirs[0].is_dir():
        return []
    found = []
    for path in sorted(p for p in dirs[0].iterdir() if p.name.endswith(_CHECKPOINT)):
        history = path.with_name(path.name.removesuffix(_CHECKPOINT) + ".history.json")
        try:
            entry = json.loads(history.read_bytes())
            started = datetime.fromtimestamp(int(entry["startTime"]), UTC)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # an update still being written, or not one of ours to read
        found.append(UpdateCheckpoint(str(entry.get("kind", "")), started, _read(path)))
    return found


def current_state(target: EngineTarget) -> Checkpoint | None:
    """The stack's state as the backend has it now (None: not a file backend, or none)."""
    dirs = _stack_dirs(target)
    if dirs is None or not dirs[1].is_file():
        return None
    return _read(dirs[1])


def from_deployment(deployment: Any) -> Checkpoint:
    """A state export's deployment (other backends) as a Checkpoint."""
    resources = deployment.get("resources") if isinstance(deployment, dict) else None
    return _checkpoint(resources or [])


def _read(path: Path) -> Checkpoint:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return _checkpoint([])
    latest = (data.get("checkpoint") or {}).get("latest") or {}
    return _checkpoint(latest.get("resources") or [])


def _checkpoint(resources: list[dict[str, Any]]) -> Checkpoint:
    # Fields that change without the state changing (where the engine ran) are left out.
    kept = [{k: v for k, v in r.items() if k not in ("sourcePosition", "stackTrace")}
            for r in resources]  # fmt: skip
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()
    return Checkpoint(resources, digest)
