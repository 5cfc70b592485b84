"""How differences read, in one place for the CLI, the notifications, the report and the
pages: values (JSON, secrets redacted, cut to a width), a property's label, what happened
to a resource as a whole, and the severities and stack states in display order."""

from __future__ import annotations

import json
from typing import Any

from driftwarden.domain.model import (
    REDACTED,
    ChangeKind,
    Check,
    DifferenceSource,
    Severity,
    StackState,
)

ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and "…" (`limit` in all)."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def property_label(path: str, kind: str, source: str = DifferenceSource.DIFF) -> str:
    """`rules[0].resources[1] (add, outputs only)`: the path, its diff kind, and whether
    only the refreshed outputs showed it (the provider's own diff did not)."""
    if source == DifferenceSource.INVENTORY:  # the whole object, found by listing the platform
        return "created outside the stacks"
    if not path:
        return ""
    if source == DifferenceSource.OUTPUTS:
        return f"{path} ({kind}, outputs only)"
    return f"{path} ({kind})"


def json_value(value: Any, *, secret: bool = False, limit: int | None = None) -> str:
    """A value as JSON (strings show their quotes and escapes), `[secret]` when it is one,
    cut to `limit` characters."""
    if secret:
        return REDACTED
    try:
        encoded = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        encoded = repr(value)
    return encoded if limit is None else shorten(encoded, limit)


# What happened to a resource as a whole (a difference with no property path), by check.
_PENDING: dict[str, str] = {
    ChangeKind.CREATE: "would be created",
    ChangeKind.DELETE: "would be deleted",
    ChangeKind.REPLACE: "would be replaced",
    ChangeKind.UPDATE: "would be updated",
}
_DRIFTED: dict[str, str] = {
    ChangeKind.DELETE: "deleted out of band",
    ChangeKind.CREATE: "created out of band",
    ChangeKind.REPLACE: "would need a replacement",
    ChangeKind.UPDATE: "changed out of band",
}


def whole_resource(change: str, check: str) -> str:
    """What happened to a resource as a whole: `deleted out of band`, `would be created`."""
    if check == Check.CODE:
        return _PENDING.get(change, f"pending {change}")
    return _DRIFTED.get(change, f"drifted ({change})")


# Highest first, as every listing and filter shows them.
SEVERITIES: list[str] = [severity.value for severity in sorted(Severity, key=lambda s: -s.rank)]
STACK_STATES: list[str] = [state.value for state in StackState]
