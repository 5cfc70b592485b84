"""What callers give the engine and get back, without importing the Pulumi SDK: a
command that never runs the engine (`status`, `history`, `--help`) never loads it."""

from __future__ import annotations

import functools
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from driftwarden.domain.model import Check

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EngineTarget:
    """Everything the engine needs to reach one Pulumi stack."""

    name: str  # driftwarden's name for the stack (for messages)
    project_dir: Path
    stack: str
    backend_url: str
    passphrase_file: Path
    pulumi_home: Path
    env: Mapping[str, str] = field(default_factory=dict)


class Action(StrEnum):
    """Everything driftwarden asks of the engine. Only REFRESH and UP change anything."""

    DRIFT = "drift"  # refresh --preview-only
    CODE = "code"  # preview
    PLAN_REFRESH = "plan-refresh"  # what `refresh` would accept into state
    PLAN_UP = "plan-up"  # preview --refresh: what `up --refresh` would do
    REFRESH = "refresh"  # accept the live values into state
    UP = "up"  # up --refresh: put the infrastructure back to the program

    @classmethod
    def of(cls, check: Check) -> Action:
        return cls(check.value)


@dataclass
class CheckRun:
    action: Action
    events: list[dict[str, Any]]
    duration_seconds: float
    cli_version: str


def project_settings(project_dir: Path) -> dict[str, Any]:
    """The project's Pulumi.yaml as a dict ({} when unreadable: the engine will say why).
    Parsed once while the file is unchanged: a check asks for it several times."""
    for name in ("Pulumi.yaml", "Pulumi.yml"):
        path = project_dir / name
        try:
            status = path.stat()
        except OSError:
            continue
        if not stat.S_ISREG(status.st_mode):
            continue
        return dict(_parsed(str(path), status.st_mtime_ns, status.st_size))
    return {}


@functools.lru_cache(maxsize=256)
def _parsed(path: str, _mtime_ns: int, _size: int) -> dict[str, Any]:
    import yaml  # a dependency of the pulumi SDK

    try:
        settings = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return settings if isinstance(settings, dict) else {}


def project_name(project_dir: Path) -> str:
    return str(project_settings(project_dir).get("name") or project_dir.name)


def file_backend_dir(backend_url: str) -> Path | None:
    """The directory of a `file://` state backend; None for any other backend."""
    parsed = urlparse(backend_url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def history_stamp(target: EngineTarget) -> str | None:
    """A stamp that changes whenever an update is added to the stack's history, when one
    can be had without the engine (a file backend: the history folder's mtime and size);
    None otherwise (read the history to know)."""
    backend = file_backend_dir(target.backend_url)
    if backend is None:
        return None
    pulumi_dir = backend / ".pulumi" / "history"
    for folder in (pulumi_dir / project_name(target.project_dir) / target.stack,
                   pulumi_dir / target.stack):  # fmt: skip
        try:
            status = folder.stat()
        except OSError:
            continue
        return f"file:{status.st_mtime_ns}:{status.st_size}"
    return None
