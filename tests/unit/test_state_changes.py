"""What a change of the state wrote, on states recorded from the real engine
(tests/fixtures/events/state-*.json: the local demo's `pulumi stack export` before and
after a `pulumi refresh` took out-of-band drift in), and how the finding lifecycle ends a
finding whose value the state absorbed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from driftwarden.domain.model import (
    REDACTED,
    ChangeKind,
    OutOfBandAttribution,
    ResourceChange,
    UpdateAttribution,
    urn_name,
)
from driftwarden.drift import extract_changes
from driftwarden.drift.extract import state_changes
from driftwarden.drift.lifecycle import Absorbed, CheckSeen, fold_check
from driftwarden.drift.rules import BUILTIN_RULES, assess_change
from driftwarden.engine.checkpoints import from_deployment
from tests.conftest import EVENTS, load_events

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REFRESH = UpdateAttribution("update-7", "refresh", "alice", "succeeded", T0.isoformat(), None)


def state(name: str) -> list[dict[str, Any]]:
    return list(json.loads((EVENTS / f"{name}.json").read_text())["resources"])


def by_name(changes: list[ResourceChange]) -> dict[str, ResourceChange]:
    return {urn_name(change.urn): change for change in changes}


def test_a_refresh_wrote_each_drifted_property_and_dropped_the_deleted_file() -> None:
    changes = by_name(state_changes(state("state-before-refresh"), state("state-after-refresh")))
    assert set(changes) == {"motd", "settings", "readme", "api-token"}  # never a provider
    assert changes["readme"].change == ChangeKind.DELETE
    assert [(p.path, p.expected, p.actual) for p in changes["motd"].properties] == [
        ("content", "hello\n", "HACKED\n")
    ]
    assert [(p.path, p.expected, p.actual) for p in changes["settings"].properties] == [
        ("mode", "0640", "0666")
    ]
    (token,) = changes["api-token"].properties
    assert (token.path, token.expected, token.actual, token.secret) == (
        "content", REDACTED, REDACTED, True,
    )  # fmt: skip


def test_sensitive_paths_are_redacted_as_findings_are() -> None:
    changes = by_name(
        state_changes(state("state-before-refresh"), state("state-after-refresh"), ["content"])
    )
    (motd,) = changes["motd"].properties
    assert (motd.expected, motd.actual, motd.secret) == (REDACTED, REDACTED, True)
    assert "HACKED" not in json.dumps([c.live for c in changes.values()])


def test_a_created_resource_is_whole_with_its_secrets_blinded_and_rated_by_its_fields() -> None:
    created = by_name(state_changes([], state("state-after-refresh")))
    assert all(change.change == ChangeKind.CREATE for change in created.values())
    (token,) = created["api-token"].properties
    assert (token.path, token.source) == ("", "state")
    assert token.actual["content"] == REDACTED
    assert token.actual["path"] == "secrets/api-token"
    assert "ciphertext" not in json.dumps(token.actual)
    rated = assess_change(BUILTIN_RULES, created["settings"])  # mode 0666: world-writable
    assert [(path, r.title) for path, r in rated.items()] == [("", "file made world-writable")]


def test_the_same_state_twice_changes_nothing() -> None:
    after = state("state-after-refresh")
    assert state_changes(after, after) == []
    assert (
        from_deployment({"resources": after}).digest
        == from_deployment(
            {"resources": [dict(r, sourcePosition="elsewhere") for r in after]}
        ).digest
    )  # where the engine ran is not the state


def fold_after(absorbed: dict[tuple[str, str], Absorbed]) -> Any:
    drift = extract_changes(load_events("refresh-drift"))
    first = fold_check(
        [],
        CheckSeen(
            stack="demo",
            check="drift",
            operation_id="op-0",
            seen_at=T0,
            changes=drift,
            attributions={c.urn: OutOfBandAttribution() for c in drift},
        ),
    )
    gone = CheckSeen(
        stack="demo",
        check="drift",
        operation_id="op-1",
        seen_at=T0 + timedelta(minutes=5),
        changes=[],
        absorbed=absorbed,
    )
    return fold_check(first.opened, gone)  # fmt: skip


def test_a_finding_whose_value_the_state_took_in_ends_accepted_with_whose_change() -> None:
    motd = "urn:pulumi:fixture::local-demo::pulumi-python:dynamic:Resource::motd"
    result = fold_after({(motd, "content"): Absorbed("HACKED\n", False, REFRESH)})
    ended = {urn_name(f.urn) + "." + f.path: f for f in result.resolved}
    assert ended["motd.content"].ended_as == "accepted"
    assert ended["motd.content"].accepted_by == REFRESH
    assert ended["settings.mode"].ended_as == "resolved"  # the state took nothing there
    kinds = {t.finding_id: t.kind for t in result.transitions}
    assert kinds[ended["motd.content"].id] == "accepted"
    assert kinds[ended["settings.mode"].id] == "resolved"
    accepted = next(t for t in result.transitions if t.kind == "accepted")
    assert accepted.attribution == REFRESH


def test_a_state_that_took_another_value_does_not_accept_the_finding() -> None:
    motd = "urn:pulumi:fixture::local-demo::pulumi-python:dynamic:Resource::motd"
    result = fold_after({(motd, "content"): Absorbed("hello\n", False, REFRESH)})
    assert {f.ended_as for f in result.resolved} == {"resolved"}
