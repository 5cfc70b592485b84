"""The Pulumi engine, driven through the Automation API (the only user of it)."""

from driftwarden.engine.errors import EngineError, EngineErrorKind
from driftwarden.engine.runner import (
    Action,
    CheckRun,
    Engine,
    EngineTarget,
    project_name,
)

__all__ = [
    "Action",
    "CheckRun",
    "Engine",
    "EngineError",
    "EngineErrorKind",
    "EngineTarget",
    "project_name",
]
