"""The one shortener of displayed text."""

from __future__ import annotations

from driftwarden.domain.text import shorten


def test_shorten() -> None:
    assert shorten("abc", 3) == "abc"
    assert shorten("abcd", 3) == "ab…"
    assert len(shorten("x" * 500, 80)) == 80
