"""The Automation API's typed events convert back to the engine's JSON losslessly enough
that extraction gives the same answer on both paths (on_event vs the recorded log)."""

import pytest
from pulumi.automation import EngineEvent

from driftwarden.drift import extract_changes
from driftwarden.engine.events import to_engine_json
from tests.conftest import load_events


@pytest.mark.parametrize(
    "log", ["refresh-drift", "preview-code-change", "preview-replace", "refresh-in-sync"]
)
def test_typed_events_round_trip_to_the_same_changes(log: str) -> None:
    raw = load_events(log)
    typed = [to_engine_json(EngineEvent.from_json(event)) for event in raw]
    assert extract_changes(typed) == extract_changes(raw)


def test_conversion_keeps_property_names_verbatim() -> None:
    raw = next(e for e in load_events("refresh-drift") if "resOutputsEvent" in e)
    converted = to_engine_json(EngineEvent.from_json(raw))
    metadata = converted["resOutputsEvent"]["metadata"]
    assert set(metadata["old"]["inputs"]) == set(
        raw["resOutputsEvent"]["metadata"]["old"]["inputs"]
    )
    assert metadata["op"] == raw["resOutputsEvent"]["metadata"]["op"]
