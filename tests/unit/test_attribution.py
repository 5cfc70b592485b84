"""Stack updates and attributions: dataclasses in, the same JSON out (the audit chain,
the findings table, `scan --json`, `drift show --json`), and back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from driftwarden.domain.model import (
    Attribution,
    CommitAttribution,
    OutOfBandAttribution,
    StackUpdate,
    UnknownAttribution,
    UpdateAttribution,
    attribution_from_dict,
    describe_attribution,
)

UPDATE = StackUpdate(
    version=0,
    kind="update",
    result="failed",
    start_time=datetime(2026, 11, 23, 19, 0, 0, 250000, tzinfo=UTC),
    end_time=datetime(2026, 11, 23, 19, 0, 4, tzinfo=UTC),
    message="greet differently",
    resource_changes={"same": 4, "update": 1},
    environment={"git.author": "Ada Lovelace", "git.author.email": "ada@example.com"},
)


def test_a_stack_update_is_recorded_and_read_back_unchanged() -> None:
    details = UPDATE.details()
    assert details == {
        "key": "update@2026-11-23T19:00:00.250000+00:00",
        "version": 0,
        "kind": "update",
        "result": "failed",
        "actor": "Ada Lovelace <ada@example.com>",
        "start_time": "2026-11-23T19:00:00.250000+00:00",
        "end_time": "2026-11-23T19:00:04+00:00",
        "message": "greet differently",
        "resource_changes": {"same": 4, "update": 1},
        "environment": {"git.author": "Ada Lovelace", "git.author.email": "ada@example.com"},
    }
    # What the audit chain stores is JSON.
    assert StackUpdate.from_details(json.loads(json.dumps(details))) == UPDATE
    assert UPDATE.action == "stack.update"
    assert not UPDATE.succeeded
    assert StackUpdate.from_details({"kind": "update"}) is None  # no start: not an update


@pytest.mark.parametrize(
    ("attribution", "stored", "described"),
    [
        (OutOfBandAttribution(), {"kind": "out_of_band"}, "changed outside Pulumi"),
        (
            UpdateAttribution.of(UPDATE),
            {"kind": "update", "update": "update@2026-11-23T19:00:00.250000+00:00",
             "operation": "update", "actor": "Ada Lovelace <ada@example.com>",
             "result": "failed", "time": "2026-11-23T19:00:00.250000+00:00",
             "message": "greet differently"},
            "update by Ada Lovelace <ada@example.com> (failed, 2026-11-23T19:00:00.250000+00:00)",
        ),
        (
            CommitAttribution("edb51d77c1f0a6c1", "Ada <ada@example.com>",
                              "2026-01-01T00:00:00+00:00", "local demo"),
            {"kind": "commit", "commit": "edb51d77c1f0a6c1", "author": "Ada <ada@example.com>",
             "time": "2026-01-01T00:00:00+00:00", "subject": "local demo"},
            "commit edb51d77c1 by Ada <ada@example.com> (2026-01-01T00:00:00+00:00)",
        ),
        (UnknownAttribution(), {"kind": "unknown"}, "unknown"),
    ],
)  # fmt: skip
def test_attributions_keep_their_json_shape(
    attribution: Attribution, stored: dict[str, str], described: str
) -> None:
    assert attribution.to_dict() == stored
    assert list(attribution.to_dict()) == list(stored)  # the key order `--json` prints
    assert attribution_from_dict(stored) == attribution
    assert describe_attribution(attribution) == described


def test_no_attribution() -> None:
    assert attribution_from_dict(None) is None
    assert attribution_from_dict({}) is None
    assert describe_attribution(None) == ""
    assert attribution_from_dict({"kind": "from the future"}) == UnknownAttribution()
