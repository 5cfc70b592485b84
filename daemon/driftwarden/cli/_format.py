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
