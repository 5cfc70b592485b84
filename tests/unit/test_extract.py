"""Drift extraction on event streams recorded from the real engine (tests/fixtures/events)."""

import json

import pytest

from driftwarden.domain.model import REDACTED, ResourceChange
from driftwarden.drift import extract_changes, stack_was_deployed
from tests.conftest import load_events

FIXTURE_TOKENS = ("fixture-token-ORIGINAL", "fixture-token-CHANGED-OUT-OF-BAND")


def by_name(changes: list[ResourceChange]) -> dict[str, ResourceChange]:
    return {change.name: change for change in changes}


@pytest.mark.parametrize("log", ["refresh-in-sync", "preview-in-sync"])
def test_in_sync_stack_has_no_changes(log: str) -> None:
    events = load_events(log)
    assert stack_was_deployed(events)
    assert extract_changes(events) == []


def test_refresh_drift_reports_each_property_with_state_and_live_values() -> None:
    changes = by_name(extract_changes(load_events("refresh-drift")))
    assert set(changes) == {"motd", "settings", "readme", "api-token"}

    motd = changes["motd"]
    assert motd.change == "update"
    assert motd.urn == "urn:pulumi:fixture::local-demo::pulumi-python:dynamic:Resource::motd"
    assert [p.to_dict() for p in motd.properties] == [
        {
            "path": "content",
            "kind": "update",
            "expected": "hello\n",
            "actual": "HACKED\n",
            "secret": False,
            "source": "diff",
        }
    ]
    (mode,) = changes["settings"].properties
    assert (mode.path, mode.expected, mode.actual) == ("mode", "0640", "0666")


def test_deleted_resource_is_one_delete_change_without_properties() -> None:
    readme = by_name(extract_changes(load_events("refresh-drift")))["readme"]
    assert readme.change == "delete"
    assert readme.properties == ()


def test_changed_secret_is_named_but_redacted() -> None:
    events = load_events("refresh-drift")
    (token,) = by_name(extract_changes(events))["api-token"].properties
    assert token.to_dict() == {
        "path": "content",
        "kind": "update",
        "expected": REDACTED,
        "actual": REDACTED,
        "secret": True,
        "source": "diff",
    }


def test_no_secret_value_reaches_the_records() -> None:
    for log in ("refresh-drift", "preview-code-change", "preview-replace"):
        text = json.dumps([c.to_dict() for c in extract_changes(load_events(log))])
        for token in FIXTURE_TOKENS:
            assert token not in text


def test_legacy_refresh_diffs_give_the_same_changes() -> None:
    assert extract_changes(load_events("refresh-drift-legacy-diff")) == extract_changes(
        load_events("refresh-drift")
    )


def test_sensitive_paths_redact_values_that_are_not_pulumi_secrets() -> None:
    changes = by_name(extract_changes(load_events("refresh-drift"), sensitive_paths=["cont*"]))
    (content,) = changes["motd"].properties
    assert (content.secret, content.expected, content.actual) == (True, REDACTED, REDACTED)
    (mode,) = changes["settings"].properties
    assert not mode.secret


def test_code_change_shows_the_planned_values_and_skips_default_providers() -> None:
    changes = by_name(extract_changes(load_events("preview-code-change")))
    assert "default" not in changes  # the implicit provider's config churn is not drift
    settings = {p.path: p for p in changes["settings"].properties}
    assert settings["content"].actual == "[server]\nport = 9090\nlog_level = info\n"
    assert changes["motd"].properties[0].actual == "bonjour\n"
    assert changes["readme"].change == "create"


def test_replacement_marks_the_property_that_forces_it() -> None:
    motd = by_name(extract_changes(load_events("preview-replace")))["motd"]
    assert motd.change == "replace"
    kinds = {p.path: p.kind for p in motd.properties}
    assert kinds == {"content": "update", "path": "update-replace"}
    path = next(p for p in motd.properties if p.path == "path")
    assert (path.expected, path.actual) == ("motd.txt", "messages/motd.txt")


def test_up_refresh_preview_plans_the_way_back_to_the_program() -> None:
    changes = by_name(extract_changes(load_events("preview-refresh-drift")))
    assert changes["motd"].properties[0].expected == "HACKED\n"
    assert changes["motd"].properties[0].actual == "hello\n"
    assert changes["readme"].change == "create"


def test_detailed_diff_paths_are_used_verbatim_when_the_provider_gives_them() -> None:
    # Take a real step and give it a provider-style detailedDiff on a nested path.
    events = load_events("refresh-drift")
    step = next(
        e["resOutputsEvent"]["metadata"]
        for e in events
        if "resOutputsEvent" in e and e["resOutputsEvent"]["metadata"]["urn"].endswith("::motd")
    )
    step["old"]["inputs"]["tags"] = {"kubernetes.io/role": "web"}
    step["new"]["inputs"]["tags"] = {"kubernetes.io/role": "db"}
    step["detailedDiff"] = {'tags["kubernetes.io/role"]': {"diffKind": "update", "inputDiff": True}}
    (prop,) = by_name(extract_changes(events))["motd"].properties
    assert (prop.path, prop.expected, prop.actual) == ('tags["kubernetes.io/role"]', "web", "db")
