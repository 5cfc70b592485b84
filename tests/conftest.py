"""Shared test helpers: the repo's paths and the recorded engine events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "tests" / "fixtures" / "events"


def load_events(name: str) -> list[dict[str, Any]]:
    """A real engine event log recorded by scripts/record-engine-events."""
    with (EVENTS / f"{name}.jsonl").open() as handle:
        return [json.loads(line) for line in handle]
