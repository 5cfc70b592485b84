"""Markdown that no value can break out of, for the notifications and the report alike:
text escaped, values as code spans fenced by more backticks than they hold."""

from __future__ import annotations

from driftwarden.domain.text import shorten

# What could make a link, an image, emphasis or HTML out of text in a message.
PROSE_SPECIAL = "\\`*[]<>"
# In a report's cells and headings, also a mention, a heading, a table cell's end or any
# other construct: every punctuation mark GFM lets a backslash escape.
CELL_SPECIAL = "\\`*_{}[]()<>#+-!|~@&:"


def escape(text: str, *, cell: bool = False) -> str:
    """Text on one line, its special characters escaped (`cell`: every one of them)."""
    special = CELL_SPECIAL if cell else PROSE_SPECIAL
    text = " ".join(str(text).split()) if cell else str(text).replace("\n", " ")
    return "".join(f"\\{char}" if char in special else char for char in text)


def code(text: str, *, cell: bool = False, limit: int | None = None) -> str:
    """A code span that survives backticks inside `text`, on one line, cut to `limit`;
    in a table `cell`, pipes escaped too (GFM splits cells before it reads spans). HTML
    inside a code span is shown, not rendered."""
    text = " ".join(text.split()) if cell else text.replace("\n", " ")
    if limit is not None:
        text = shorten(text, limit)
    if cell:
        text = text.replace("|", "\\|")
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if cell or longest or text.startswith(" ") or text.endswith(" ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
