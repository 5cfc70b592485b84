"""Shared rendering: UTC timestamps, values, tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from driftwarden.domain.text import json_value, shorten

VALUE_WIDTH = 48


def short_value(value: Any, secret: bool = False) -> str:
    """A value as JSON for a table cell, shortened to VALUE_WIDTH."""
    return json_value(value, secret=secret, limit=VALUE_WIDTH)


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    max_widths: Mapping[str, int] | None = None,
    no_wrap: Sequence[str] = (),
) -> Table:
    """A table that fits the terminal. A column in `max_widths` is cut to that width with
    "…" (its full value is in `--json`) and, like the `no_wrap` ones, never breaks; the
    others wrap into the room left."""
    limits = max_widths or {}
    out = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        out.add_column(column, overflow="fold", no_wrap=column in limits or column in no_wrap)
    for row in rows:
        cells = ["" if cell is None else str(cell) for cell in row]
        cells = [shorten(cell, limits[column]) if column in limits else cell
                 for column, cell in zip(columns, cells, strict=True)]  # fmt: skip
        out.add_row(*(escape(cell) for cell in cells))
    return out
