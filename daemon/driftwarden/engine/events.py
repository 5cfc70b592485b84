"""The Automation API's typed engine events, back in the engine's own JSON shape.

`on_event` hands us `EngineEvent` objects parsed from the engine's JSON; the drift
extraction (and its recorded fixtures) speak that JSON, so we convert back: attribute
names to camelCase, enums to their values, property maps (inputs/outputs) untouched.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_engine_json(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        # Property maps: keys are the user's property names and must stay verbatim.
        return {key: to_engine_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_engine_json(item) for item in value]
    if hasattr(value, "__dict__"):
        return {
            _camel(key): to_engine_json(item)
            for key, item in vars(value).items()
            if item is not None and not key.startswith("_")
        }
    return value
