"""Pulumi property paths: `tags.env`, `ingress[0].cidrBlocks[1]`, `["key.with.dots"]`.

The same syntax the engine uses in `detailedDiff` keys, so paths we compute ourselves
read exactly like the ones providers report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

Segment = str | int

# Pulumi quotes a key that has any character outside [A-Za-z0-9_] (resource.PropertyPath.String).
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_]*$")
_MISSING = object()


def format_path(segments: Sequence[Segment]) -> str:
    out = []
    for index, segment in enumerate(segments):
        if isinstance(segment, int):
            out.append(f"[{segment}]")
        elif _PLAIN_KEY.match(segment):
            out.append(segment if index == 0 else f".{segment}")
        else:
            escaped = segment.replace('"', '\\"')
            out.append(f'["{escaped}"]')
    return "".join(out)


def parse_path(path: str) -> list[Segment]:
    """Split a property path into keys (str) and list indices (int)."""
    segments: list[Segment] = []
    i = 0
    while i < len(path):
        char = path[i]
        if char == ".":
            i += 1
            continue
        if char == "[":
            end = _closing_bracket(path, i)
            inner = path[i + 1 : end]
            if inner.startswith('"'):
                segments.append(inner[1:-1].replace('\\"', '"'))
            elif inner == "*":
                segments.append("*")
            else:
                segments.append(int(inner))
            i = end + 1
            continue
        end = i
        while end < len(path) and path[end] not in ".[":
            end += 1
        segments.append(path[i:end])
        i = end
    return segments


def _closing_bracket(path: str, start: int) -> int:
    i = start + 1
    if i < len(path) and path[i] == '"':
        i += 1
        while i < len(path) and path[i] != '"':
            i += 2 if path.startswith('\\"', i) else 1
        i += 1
    end = path.find("]", i)
    if end < 0:
        raise ValueError(f"unbalanced '[' in property path {path!r}")
    return end


def resolve(value: Any, segments: Sequence[Segment]) -> Any:
    """The value at `segments` inside `value`, or MISSING when the path does not exist."""
    current = value
    for segment in segments:
        if isinstance(segment, int) and isinstance(current, list):
            if not 0 <= segment < len(current):
                return _MISSING
            current = current[segment]
        elif isinstance(segment, str) and isinstance(current, dict) and segment in current:
            current = current[segment]
        else:
            return _MISSING
    return current


def is_missing(value: Any) -> bool:
    return value is _MISSING


def glob(pattern: str) -> re.Pattern[str]:
    """A path or type glob: `*` matches anything (dots and brackets too); the rest is
    literal, brackets included: `ingress[*].cidrBlocks[*]`, `metadata.labels["app"]`."""
    return re.compile("^" + re.escape(pattern).replace(r"\*", ".*") + "$")


def subtree_glob(pattern: str) -> re.Pattern[str]:
    """Like `glob`, and also everything under the paths it matches: `metadata.managedFields`
    covers `metadata.managedFields[0].time`."""
    body = re.escape(pattern).replace(r"\*", ".*")
    return re.compile(f"^{body}(?:$|[.\\[])")


def covers(patterns: Sequence[str], path: str) -> bool:
    """True when one of the `subtree_glob` patterns matches `path`."""
    return any(subtree_glob(pattern).match(path) for pattern in patterns)


def overlaps(a: Sequence[Segment], b: Sequence[Segment]) -> bool:
    """True when one path is the other or lies under it."""
    shorter = min(len(a), len(b))
    return list(a[:shorter]) == list(b[:shorter])
