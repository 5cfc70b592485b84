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


DEMO_PROJECT = REPO / "stacks" / "local-demo"


def write_demo_config(directory: Path) -> Path:
    """A valid config in `directory`: one stack of the demo project (never deployed),
    its state directory beside it."""
    path = directory / "driftwarden.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{directory / "state"}"\n\n'
        f'[[stacks]]\nname = "demo"\nproject_dir = "{DEMO_PROJECT}"\nstack = "dev"\n'
    )
    return path
