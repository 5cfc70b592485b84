"""Shared rendering: UTC timestamps, values, tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from driftwarden.domain.text import shorten

VALUE_WIDTH = 48


def short_value(value: Any, secret: bool = False) -> str:
    """A value as JSON for a table cell, shortened to VALUE_WIDTH."""
    if secret:
        return "[secret]"
    return shorten(json.dumps(value, ensure_ascii=False), VALUE_WIDTH)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    out = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*(escape("" if cell is None else str(cell)) for cell in row))
    return out


def property_label(path: str, kind: str, source: str = "diff") -> str:
    """`rules[0].resources[1] (add, outputs only)`: the path, its diff kind, and whether
    only the refreshed outputs showed it (the provider's own diff did not)."""
    if not path:
        return ""
    return f"{path} ({kind}, outputs only)" if source == "outputs" else f"{path} ({kind})"
