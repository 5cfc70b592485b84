"""Text shortened for display: one rule for every value, error and line cut to a width."""

from __future__ import annotations

ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and "…" (`limit` in all)."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def property_label(path: str, kind: str, source: str = "diff") -> str:
    """`rules[0].resources[1] (add, outputs only)`: the path, its diff kind, and whether
    only the refreshed outputs showed it (the provider's own diff did not)."""
    if source == "inventory":  # the whole object, found by listing the platform
        return "created outside the stacks"
    if not path:
        return ""
    return f"{path} ({kind}, outputs only)" if source == "outputs" else f"{path} ({kind})"
