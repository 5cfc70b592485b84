"""Text shortened for display: one rule for every value, error and line cut to a width."""

from __future__ import annotations

ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and "…" (`limit` in all)."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
