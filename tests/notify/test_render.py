"""Message rendering on findings built from real recorded engine events."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from driftwarden.domain.model import (
    REDACTED,
    FindingTransition,
    OutOfBandAttribution,
    ResourceChange,
    TransitionKind,
    UpdateAttribution,
)
from driftwarden.drift import extract_changes
from driftwarden.notify.render import (
    EVENT_OF_TRANSITION,
    DigestStack,
    Message,
    render_check_failing,
    render_check_recovered,
    render_digest,
    render_findings,
    render_test,
)
from tests.conftest import load_events

FIXTURE_TOKENS = ("fixture-token-ORIGINAL", "fixture-token-CHANGED-OUT-OF-BAND")
FINAL = "See everything: driftwarden drift show demo"
TYPE = "pulumi-python:dynamic:Resource"


def transitions_of(
    changes: list[ResourceChange], kind: TransitionKind = "opened", check: str = "drift"
) -> list[FindingTransition]:
    """What store.findings makes of a check's changes: one per property, "" for a resource."""
    result: list[FindingTransition] = []
    for change in changes:
        props = change.properties or (None,)
        for prop in props:
            result.append(
                FindingTransition(
                    kind=kind,
                    finding_id=f"fd-{len(result)}",
                    stack="demo",
                    check=check,
                    urn=change.urn,
                    type=change.type,
                    change=change.change,
                    path=prop.path if prop else "",
                    property_kind=prop.kind if prop else "",
                    expected=prop.expected if prop else None,
                    actual=prop.actual if prop else None,
                    secret=prop.secret if prop else False,
                )
            )
    return result


@pytest.fixture
def drift() -> list[FindingTransition]:
    changes = extract_changes(load_events("refresh-drift"))
    assert len(changes) == 4
    return transitions_of(changes)


def by_name(transitions: list[FindingTransition], name: str) -> FindingTransition:
    return next(t for t in transitions if t.urn.endswith(f"::{name}"))


def both(message: Message) -> tuple[str, str]:
    return message.markdown, message.text


def assert_no_secret(message: Message) -> None:
    for token in FIXTURE_TOKENS:
        assert token not in message.title
        assert token not in message.markdown
        assert token not in message.text


def test_new_drift_is_one_message_listing_every_resource_and_property(
    drift: list[FindingTransition],
) -> None:
    message = render_findings("demo", drift)
    assert message is not None
    assert message.event == "drift.new"
    assert message.title == "[driftwarden] demo: 4 resources drifted"
    markdown, text = both(message)

    assert "**motd**" in markdown
    assert f"`{TYPE}`" in markdown
    assert '`content`: `"hello\\n"` → `"HACKED\\n"`' in markdown
    assert '`mode`: `"0640"` → `"0666"`' in markdown
    assert "**readme**" in markdown
    assert "deleted out of band" in markdown
    assert "`content`: `[secret]` → `[secret]`" in markdown

    assert f"motd ({TYPE})" in text
    assert 'content: "hello\\n" → "HACKED\\n"' in text
    assert 'mode: "0640" → "0666"' in text
    assert "content: [secret] → [secret]" in text
    assert "deleted out of band" in text
    assert "**" not in text
    assert "`" not in text

    for body in both(message):
        assert body.splitlines()[-1] == FINAL
        assert "more propert" not in body
    assert_no_secret(message)


def test_secret_values_are_never_shown_even_if_a_finding_carried_them(
    drift: list[FindingTransition],
) -> None:
    token = by_name(drift, "api-token")
    leaky = dataclasses.replace(token, expected=FIXTURE_TOKENS[0], actual=FIXTURE_TOKENS[1])
    message = render_findings("demo", [leaky])
    assert message is not None
    assert_no_secret(message)
    assert f"{REDACTED} → {REDACTED}" in message.text


def test_values_are_json_and_long_ones_shortened(drift: list[FindingTransition]) -> None:
    motd = by_name(drift, "motd")
    long_value = {"rules": [{"port": port, "cidr": "10.0.0.0/8"} for port in range(20)]}
    message = render_findings("demo", [dataclasses.replace(motd, actual=long_value)])
    assert message is not None
    line = next(line for line in message.text.splitlines() if "content:" in line)
    assert '"hello\\n" → {"rules": [{"cidr": "10.0.0.0/8", "port": 0}' in line
    assert line.endswith("…")
    assert len(line.split(" → ")[1]) == 80


def test_changed_findings_show_previous_and_new_actual(drift: list[FindingTransition]) -> None:
    motd = by_name(drift, "motd")
    changed = dataclasses.replace(
        motd,
        kind="changed",
        actual="HACKED AGAIN\n",
        previous={
            "change": "update",
            "kind": "update",
            "expected": "hello\n",
            "actual": "HACKED\n",
        },
    )
    message = render_findings("demo", [changed])
    assert message is not None
    assert message.event == "drift.changed"
    assert message.title == "[driftwarden] demo: drift changed on 1 resource"
    assert '"HACKED\\n" → "HACKED AGAIN\\n"' in message.text
    assert '"hello\\n"' in message.text  # what state still says


def test_resolved_findings(drift: list[FindingTransition]) -> None:
    resolved = [dataclasses.replace(t, kind="resolved") for t in drift]
    message = render_findings("demo", resolved)
    assert message is not None
    assert message.event == "drift.resolved"
    assert message.title == "[driftwarden] demo: drift resolved on 4 resources"
    assert "resolved" in message.text
    assert "was: deleted out of band" in message.text
    assert_no_secret(message)


def test_mixed_transitions_take_the_most_important_event(drift: list[FindingTransition]) -> None:
    mixed = [
        by_name(drift, "motd"),
        by_name(drift, "settings"),
        dataclasses.replace(by_name(drift, "readme"), kind="resolved"),
    ]
    message = render_findings("demo", mixed)
    assert message is not None
    assert message.event == "drift.new"
    assert message.title == "[driftwarden] demo: 2 resources drifted, 1 resolved"
    # New findings come first, resolved ones after.
    assert message.text.index("motd") < message.text.index("readme")

    only_changed_and_resolved = [
        dataclasses.replace(by_name(drift, "motd"), kind="changed", previous={"actual": "x"}),
        dataclasses.replace(by_name(drift, "readme"), kind="resolved"),
    ]
    message = render_findings("demo", only_changed_and_resolved)
    assert message is not None
    assert message.event == "drift.changed"
    assert message.title == "[driftwarden] demo: drift changed on 1 resource, 1 resolved"


def test_code_check_findings_say_pending_changes() -> None:
    changes = extract_changes(load_events("preview-code-change"))
    assert changes
    message = render_findings("demo", transitions_of(changes, check="code"))
    assert message is not None
    resources = len({change.urn for change in changes})
    noun = "resource" if resources == 1 else "resources"
    assert message.title == f"[driftwarden] demo: {resources} {noun} with pending changes"
    assert "drifted" not in message.title


def test_whole_resource_wording_depends_on_the_check(drift: list[FindingTransition]) -> None:
    readme = by_name(drift, "readme")
    created = dataclasses.replace(readme, check="code", change="create")
    message = render_findings("demo", [created])
    assert message is not None
    assert "would be created" in message.text


def test_events_of_transitions() -> None:
    assert EVENT_OF_TRANSITION == {
        "opened": "drift.new",
        "changed": "drift.changed",
        "resolved": "drift.resolved",
        "accepted": "drift.accepted",
    }


def test_an_accepted_finding_says_it_was_not_fixed_and_by_whom(
    drift: list[FindingTransition],
) -> None:
    motd = by_name(drift, "motd")
    refresh = UpdateAttribution("u-9", "refresh", "alice", "succeeded", "2026-12-07T12:00:00", None)
    accepted = dataclasses.replace(motd, kind="accepted", attribution=refresh)
    message = render_findings("demo", [accepted])
    assert message is not None
    assert "accepted into the state, not fixed" in message.text
    assert "refresh by alice" in message.text
    assert "resolved" not in message.title


def test_nothing_to_say_is_no_message() -> None:
    assert render_findings("demo", []) is None


def many(drift: list[FindingTransition], resources: int, per_resource: int) -> list[Any]:
    motd = by_name(drift, "motd")
    return [
        dataclasses.replace(
            motd,
            urn=f"{motd.urn}-{r:02d}",
            path=f"tags.key{p:02d}",
            expected=f"value-{p}",
            actual=f"changed-{p}-" + "x" * 30,
        )
        for r in range(resources)
        for p in range(per_resource)
    ]


@pytest.mark.parametrize("max_chars", [400, 1000, 3500])
def test_long_bodies_are_cut_at_a_line_with_a_count_of_what_was_left_out(
    drift: list[FindingTransition], max_chars: int
) -> None:
    transitions = many(drift, resources=20, per_resource=5)
    message = render_findings("demo", transitions, max_chars=max_chars)
    assert message is not None
    assert message.title == "[driftwarden] demo: 20 resources drifted"
    for body in both(message):
        assert len(body) <= max_chars
        lines = body.splitlines()
        assert lines[-1] == FINAL
        note = lines[-2]
        assert note.startswith("…and ")
        shown = sum(1 for line in lines if "tags.key" in line)
        words = note.split()
        omitted, omitted_resources = int(words[1]), int(words[5])
        assert note == f"…and {omitted} more properties on {omitted_resources} resources"
        assert shown + omitted == 100
        # Lines are never broken, and every shown property belongs to a shown resource.
        assert all("→" in line for line in lines if "tags.key" in line)
        shown_resources = sum(1 for line in lines if "(" in line and "tags.key" not in line)
        assert shown_resources + omitted_resources >= 20
        assert shown_resources + omitted_resources <= 21  # one may be split


def test_a_body_that_fits_is_not_cut(drift: list[FindingTransition]) -> None:
    transitions = many(drift, resources=2, per_resource=2)
    message = render_findings("demo", transitions, max_chars=3500)
    assert message is not None
    assert "more propert" not in message.markdown
    assert message.text.count("tags.key") == 4


def test_singular_counts_in_the_cut_note(drift: list[FindingTransition]) -> None:
    transitions = many(drift, resources=1, per_resource=2)
    full = render_findings("demo", transitions)
    assert full is not None
    for limit in range(len(full.text), 0, -1):
        message = render_findings("demo", transitions, max_chars=limit)
        assert message is not None
        if "more propert" in message.text:
            break
    assert message is not None
    assert "…and 1 more property on 1 resource\n" in message.text


def test_check_failing_and_recovered() -> None:
    failing = render_check_failing("demo", "drift", "error: could not reach the backend", 3)
    assert failing.event == "check.failing"
    assert failing.title == "[driftwarden] demo: drift check failing (3 times in a row)"
    assert "could not reach the backend" in failing.text
    assert "```" in failing.markdown
    assert "driftwarden history --stack demo" in failing.text

    recovered = render_check_recovered("demo", "drift", 4)
    assert recovered.event == "check.failing"
    assert recovered.title == "[driftwarden] demo: drift check recovered"
    assert "4 consecutive failures" in recovered.text


def test_test_message() -> None:
    message = render_test("ops-chat")
    assert message.event == "test"
    assert "ops-chat" in message.title
    assert "`ops-chat`" in message.markdown
    assert "ops-chat" in message.text
    assert "`" not in message.text


def test_new_findings_say_who_or_what_caused_them(drift: list[FindingTransition]) -> None:
    motd = dataclasses.replace(by_name(drift, "motd"), attribution=OutOfBandAttribution())
    settings = dataclasses.replace(
        by_name(drift, "settings"),
        attribution=UpdateAttribution(update=None, operation="update",
                                      actor="Ada <ada@example.com>", result="failed",
                                      time="2026-11-23T19:00:00+00:00", message=None),
    )  # fmt: skip
    message = render_findings("demo", [motd, settings])
    assert message is not None
    for body in both(message):
        assert "changed outside Pulumi" in body
    # The actor is the history's free text: Markdown must not read it as a tag or a link.
    assert "update by Ada \\<ada@example.com\\> (failed" in message.markdown
    assert "update by Ada <ada@example.com> (failed" in message.text


# ---------------------------------------------------------------------------- digest

SINCE = datetime(2026, 11, 20, 14, 3, tzinfo=UTC)


def in_stack(transitions: list[FindingTransition], stack: str) -> list[FindingTransition]:
    return [
        dataclasses.replace(t, stack=stack, urn=t.urn.replace("::demo::", f"::{stack}::"))
        for t in transitions
    ]


def test_digest_lists_every_open_finding_most_severe_stack_first(
    drift: list[FindingTransition],
) -> None:
    quiet = DigestStack("alpha", in_stack(drift, "alpha"), SINCE)
    risky = [
        dataclasses.replace(t, severity="high", rule="file made world-writable")
        if t.path == "mode" else t
        for t in in_stack(drift, "zulu")
    ]  # fmt: skip
    message = render_digest([quiet, DigestStack("zulu", risky, SINCE), DigestStack("x", [], SINCE)])
    assert message is not None
    assert message.event == "drift.digest"
    assert message.title == "[driftwarden] digest: 2 stacks with open findings (8 resources)"
    markdown, text = both(message)
    heading = "4 resources, 4 findings, open since 2026-11-20 14:03 UTC"
    assert f"### zulu — {heading}, highest severity high" in markdown
    assert f"### alpha — {heading}" in markdown
    assert markdown.index("### zulu") < markdown.index("### alpha")
    zulu = text.split("alpha —")[0]
    # The world-writable file comes first, then by name.
    assert zulu.index("zulu —") < zulu.index("settings (") < zulu.index("api-token (")
    assert f"zulu — {heading}, highest severity high\n=====" in text
    for body in both(message):
        assert body.count("→") == 2 * 3  # every property finding of both stacks
        assert body.count("deleted out of band") == 2
        assert body.splitlines()[-1] == (
            "See everything: driftwarden status, then driftwarden drift show NAME"
        )
        assert "x —" not in body  # a stack with nothing open is left out
    assert "#" not in text
    assert_no_secret(message)


def test_digest_of_one_stack_points_at_its_findings(drift: list[FindingTransition]) -> None:
    message = render_digest([DigestStack("demo", drift, SINCE)])
    assert message is not None
    assert message.title == "[driftwarden] digest: 1 stack with open findings (4 resources)"
    assert message.text.splitlines()[-1] == FINAL


def test_nothing_open_is_no_digest() -> None:
    assert render_digest([]) is None
    assert render_digest([DigestStack("demo", [], SINCE)]) is None


def test_a_long_digest_is_cut_with_a_count_across_stacks(drift: list[FindingTransition]) -> None:
    stacks = [DigestStack(f"s{n}", in_stack(many(drift, resources=10, per_resource=3), f"s{n}"),
                          SINCE) for n in range(3)]  # fmt: skip
    message = render_digest(stacks, max_chars=1200)
    assert message is not None
    for body in both(message):
        assert len(body) <= 1200
        lines = body.splitlines()
        shown = sum(1 for line in lines if "tags.key" in line)
        omitted = int(lines[-2].split()[1])
        assert lines[-2].startswith("…and ")
        assert shown + omitted == 90
        assert "s0 —" in body
        assert "s2 —" not in body  # a heading is only written with one of its findings
