"""The engine calls of one stack: each in an engine worker's process group, with the
stack's timeout and a cancel event (engine/isolated.py), bound to its target here."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from driftwarden.domain.model import StackUpdate
from driftwarden.engine.api import Action, CheckRun, EngineTarget, Progress

if TYPE_CHECKING:
    from driftwarden.engine.isolated import IsolatedEngine


class StackEngine(Protocol):
    def run(
        self, action: Action, progress: Progress | None = None, *, plan_file: Path | None = None
    ) -> CheckRun: ...

    def history(self) -> list[StackUpdate]: ...

    def modified_times(self) -> dict[str, datetime]: ...

    def export(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class IsolatedStackEngine:
    engine: IsolatedEngine
    target: EngineTarget
    timeout: float
    cancel: threading.Event | None

    def run(
        self, action: Action, progress: Progress | None = None, *, plan_file: Path | None = None
    ) -> CheckRun:
        return self.engine.run(self.target, action, progress, timeout=self.timeout,
                               cancel=self.cancel, plan_file=plan_file)  # fmt: skip

    def history(self) -> list[StackUpdate]:
        return self.engine.history(self.target, timeout=self.timeout, cancel=self.cancel)

    def modified_times(self) -> dict[str, datetime]:
        return self.engine.modified_times(self.target, timeout=self.timeout, cancel=self.cancel)

    def export(self) -> dict[str, Any]:
        return self.engine.export(self.target, timeout=self.timeout, cancel=self.cancel)
