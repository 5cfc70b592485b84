"""The Markdown report keeps every value inside its cell and inert: no link, image,
mention or HTML can come out of a tag key, a path or an update's author."""

from __future__ import annotations

from driftwarden.domain import markdown as md
from driftwarden.service.read.report import MARKDOWN_VALUE_CHARS


def test_text_cells_escape_what_markdown_would_turn_into_links_or_mentions() -> None:
    hostile = "[Approve](https://evil) ![x](https://t/p.png) @org/admins <b>|</b>\nnext"
    cell = md.escape(hostile, cell=True)
    assert "\n" not in cell
    for made in ("[Approve](", "![x](", " @org", "<b>", "https://"):
        assert made not in cell, made
    assert cell.count("|") == cell.count("\\|") == 1, "the pipe is escaped"


def test_code_cells_cannot_be_closed_early_and_keep_pipes_in_the_cell() -> None:
    cell = md.code("a ``` b | c", cell=True)
    fence = cell.split(" ", 1)[0]
    assert set(fence) == {"`"}
    assert len(fence) == 4, "longer than any backtick run inside"
    assert cell.endswith(f" {fence}")
    assert "\\|" in cell
    long = md.code("x" * (MARKDOWN_VALUE_CHARS * 2), cell=True, limit=MARKDOWN_VALUE_CHARS)
    assert "…" in long
    assert len(long) < MARKDOWN_VALUE_CHARS + 10
