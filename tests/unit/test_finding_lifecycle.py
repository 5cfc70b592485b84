"""The finding lifecycle fold, without a database, on changes extracted from engine events
recorded from the real engine (tests/fixtures/events)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from driftwarden.domain.model import (
    REDACTED,
    OutOfBandAttribution,
    PropertyChange,
    ResourceChange,
    Severity,
    urn_name,
)
from driftwarden.drift import extract_changes
from driftwarden.drift.lifecycle import (
    CheckSeen,
    FindingRecord,
    FoldResult,
    Observation,
    fold_check,
)
from driftwarden.drift.rules import Assessment
from tests.conftest import load_events

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ATTRIBUTION = OutOfBandAttribution()


def changes_of(log: str, **options: Any) -> list[ResourceChange]:
    return extract_changes(load_events(log), **options)


def fold(
    open_findings: Iterable[FindingRecord],
    changes: Sequence[ResourceChange],
    *,
    minute: int = 0,
    check: str = "drift",
    stack: str = "demo",
    rated: Assessment | None = None,
) -> FoldResult:
    """One check at T0 + `minute`, as operation `op-<minute>`; ids `fd-<n>`."""
    ids = (f"fd-{minute}-{n}" for n in itertools.count())
    seen = CheckSeen(
        stack=stack, check=check, operation_id=f"op-{minute}",
        seen_at=T0 + timedelta(minutes=minute), changes=changes,
        rate=(lambda _: rated) if rated else None,
        attributions={change.urn: ATTRIBUTION for change in changes},
    )  # fmt: skip
    return fold_check(open_findings, seen, new_id=lambda: next(ids))


def by_name(findings: Iterable[FindingRecord]) -> dict[str, FindingRecord]:
    return {urn_name(f.urn) + (f".{f.path}" if f.path else ""): f for f in findings}


def opened(changes: Sequence[ResourceChange], **options: Any) -> tuple[FindingRecord, ...]:
    return fold([], changes, **options).opened


def test_a_new_difference_opens_a_finding_per_property_or_whole_resource() -> None:
    high = Assessment(Severity.HIGH, "mode widened")
    result = fold([], changes_of("refresh-drift"), rated=high)
    findings = by_name(result.opened)
    assert set(findings) == {"motd.content", "settings.mode", "api-token.content", "readme"}
    assert (result.changed, result.seen, result.resolved) == ((), (), ())
    mode = findings["settings.mode"]
    assert (mode.stack, mode.check, mode.change, mode.kind) == ("demo", "drift", "update", "update")
    assert (mode.expected, mode.actual, mode.secret, mode.source) == ("0640", "0666", False, "diff")
    assert (mode.first_seen, mode.last_seen, mode.occurrences) == (T0, T0, 1)
    assert (mode.first_operation_id, mode.last_operation_id) == ("op-0", "op-0")
    assert (mode.severity, mode.rule) == ("high", "mode widened")
    assert mode.attribution == ATTRIBUTION
    assert mode.resolved_at is None
    readme = findings["readme"]
    assert (readme.path, readme.change, readme.kind) == ("", "delete", "")
    assert (readme.expected, readme.actual) == (None, None)
    assert [t.kind for t in result.transitions] == ["opened"] * 4
    assert [t.finding_id for t in result.transitions] == [f.id for f in result.opened]
    assert len({f.id for f in result.opened}) == 4


def test_the_same_values_seen_again_count_an_occurrence_and_say_nothing() -> None:
    changes = changes_of("refresh-drift")
    first = opened(changes, rated=Assessment(Severity.LOW, "some rule"))
    again = fold(first, changes, minute=5)
    assert (again.opened, again.changed, again.resolved, again.transitions) == ((), (), (), ())
    before, after = by_name(first), by_name(again.seen)
    assert set(after) == set(before)
    for name, finding in after.items():
        assert finding.id == before[name].id
        assert (finding.first_seen, finding.last_seen) == (T0, T0 + timedelta(minutes=5))
        assert finding.occurrences == 2
        assert (finding.first_operation_id, finding.last_operation_id) == ("op-0", "op-5")
        assert finding.values == before[name].values
        assert finding.attribution == ATTRIBUTION  # as the check that opened it said
        assert (finding.severity, finding.rule) == (None, None)  # rated by this check
    third = fold(again.seen, changes, minute=6)
    assert {f.occurrences for f in third.seen} == {3}


def test_other_values_change_the_finding_and_keep_the_previous_ones() -> None:
    first = opened(changes_of("refresh-drift"))
    motd = next(c for c in changes_of("refresh-drift") if c.name == "motd")
    moved = replace(motd, properties=(PropertyChange("content", "update", "hello\n", "AGAIN\n"),))
    changes = [moved if c.name == "motd" else c for c in changes_of("refresh-drift")]
    result = fold(first, changes, minute=1)
    (changed,) = result.changed
    assert changed.id == by_name(first)["motd.content"].id
    assert (changed.expected, changed.actual, changed.occurrences) == ("hello\n", "AGAIN\n", 2)
    assert changed.last_seen == T0 + timedelta(minutes=1)
    assert len(result.seen) == 3
    (transition,) = result.transitions
    assert (transition.kind, transition.finding_id, transition.actual) == (
        "changed", changed.id, "AGAIN\n",
    )  # fmt: skip
    assert transition.previous == {
        "change": "update", "kind": "update", "expected": "hello\n", "actual": "HACKED\n",
    }  # fmt: skip


def test_a_resource_change_that_becomes_a_replace_is_a_change_and_a_new_property() -> None:
    first = opened(changes_of("preview-code-change"), check="code")
    result = fold(first, changes_of("preview-replace"), minute=1, check="code")
    assert set(by_name(result.opened)) == {"motd.path"}
    (changed,) = result.changed
    assert (urn_name(changed.urn), changed.path, changed.change) == ("motd", "content", "replace")
    assert [(t.kind, t.path) for t in result.transitions] == [
        ("changed", "content"), ("opened", "path"),
    ]  # fmt: skip
    assert next(t for t in result.transitions if t.kind == "changed").previous == {
        "change": "update", "kind": "update", "expected": "HACKED\n", "actual": "bonjour\n",
    }  # fmt: skip


def test_what_a_check_no_longer_sees_is_resolved() -> None:
    first = opened(changes_of("refresh-drift"))
    without_settings = [c for c in changes_of("refresh-drift") if c.name != "settings"]
    result = fold(first, without_settings, minute=10)
    (resolved,) = result.resolved
    before = by_name(first)["settings.mode"]
    assert resolved.id == before.id
    assert resolved.resolved_at == T0 + timedelta(minutes=10)
    assert resolved.last_operation_id == "op-10"
    assert (resolved.last_seen, resolved.occurrences) == (T0, 1)  # when it was last seen
    assert [t.kind for t in result.transitions] == ["resolved"]
    assert result.updated == result.seen + result.resolved

    in_sync = fold(first, changes_of("refresh-in-sync"), minute=11)
    assert len(in_sync.resolved) == 4
    assert [t.kind for t in in_sync.transitions] == ["resolved"] * 4


def test_resolutions_come_after_what_the_check_reported() -> None:
    first = opened(changes_of("refresh-drift"))
    settings = next(c for c in changes_of("refresh-drift") if c.name == "settings")
    other = replace(settings, properties=(PropertyChange("owner", "update", "ana", "bob"),))
    result = fold(first, [other], minute=1)
    assert [(t.kind, t.path) for t in result.transitions] == [("opened", "owner")] + [
        ("resolved", f.path) for f in first
    ]


def test_a_check_keeps_to_its_own_stack_and_check() -> None:
    code = opened(changes_of("preview-code-change"), check="code")
    other_stack = opened(changes_of("refresh-drift"), stack="other")
    drift = fold([*code, *other_stack], changes_of("refresh-in-sync"), minute=1)
    assert drift == FoldResult()  # a drift check never resolves what the code check found

    result = fold([*code, *other_stack], changes_of("refresh-drift"), minute=2)
    assert len(result.opened) == 4  # its own findings, though the same resources differ
    assert {(f.stack, f.check) for f in result.opened} == {("demo", "drift")}
    assert (result.changed, result.seen, result.resolved) == ((), (), ())


def test_a_resolved_finding_is_not_reopened_but_a_new_one_opens() -> None:
    first = opened(changes_of("refresh-drift"))
    resolved = fold(first, [], minute=1).resolved
    result = fold(resolved, changes_of("refresh-drift"), minute=2)
    assert not result.resolved
    assert len(result.opened) == 4
    assert not {f.id for f in result.opened} & {f.id for f in first}


def test_secret_values_stay_redacted_and_compare_redacted() -> None:
    first = opened(changes_of("refresh-drift"))
    token = by_name(first)["api-token.content"]
    assert (token.expected, token.actual, token.secret) == (REDACTED, REDACTED, True)
    details = token.transition("opened").details()
    assert (details["expected"], details["actual"], details["secret"]) == (REDACTED, REDACTED, True)
    # Whatever the hidden value is now, the check reports it redacted: seen again, unchanged.
    again = fold(first, changes_of("refresh-drift"), minute=1)
    seen_token = by_name(again.seen)["api-token.content"]
    assert (seen_token.actual, seen_token.occurrences) == (REDACTED, 2)
    assert again.transitions == ()


def test_a_value_that_becomes_sensitive_is_a_change_to_redacted_values() -> None:
    first = opened(changes_of("refresh-drift"))
    sensitive = changes_of("refresh-drift", sensitive_paths=["cont*"])
    result = fold(first, sensitive, minute=1)
    (changed,) = result.changed
    assert urn_name(changed.urn) == "motd"
    assert (changed.expected, changed.actual, changed.secret) == (REDACTED, REDACTED, True)
    (transition,) = result.transitions
    assert (transition.kind, transition.secret, transition.actual) == ("changed", True, REDACTED)


def test_each_resource_and_property_is_its_own_finding() -> None:
    changes = changes_of("k8s-refresh-drift")
    webs = [c for c in changes if c.name == "web"]
    assert len({web.urn for web in webs}) == 2  # a Deployment and a Service
    result = fold([], changes)
    keys = [(f.urn, f.path) for f in result.opened]
    assert len(keys) == len(set(keys)) == sum(len(c.properties) for c in changes) == 5
    assert {f.type for f in result.opened if urn_name(f.urn) == "web"} == {c.type for c in webs}

    # One resource changes, another goes back in sync, the rest stays.
    deployment, service = webs
    fewer = replace(deployment, properties=deployment.properties[:1])
    later = [fewer if c is deployment else c for c in changes if c is not service]
    again = fold(result.opened, later, minute=1)
    assert [f.path for f in again.resolved] == [
        "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
        "spec.type",
    ]
    assert {f.path for f in again.seen} == {"spec.replicas", "data.LOG_LEVEL", "data.API_TOKEN"}


def test_a_property_reported_twice_in_one_check_counts_once() -> None:
    motd = next(c for c in changes_of("refresh-drift") if c.name == "motd")
    twice = replace(motd, properties=(*motd.properties, replace(motd.properties[0], actual="X")))
    result = fold([], [twice, motd])
    (finding,) = result.opened
    assert (finding.actual, finding.occurrences) == ("HACKED\n", 1)  # the first report


def test_the_rating_is_asked_per_observation() -> None:
    asked: list[Observation] = []

    def rate(obs: Observation) -> Assessment | None:
        asked.append(obs)
        return Assessment(Severity.CRITICAL, "secret drift") if obs.secret else None

    seen = CheckSeen("demo", "drift", "op-0", T0, changes_of("refresh-drift"), rate=rate)
    result = fold_check([], seen, new_id=iter(["a", "b", "c", "d"]).__next__)
    assert sorted(o.key[1] for o in asked) == ["", "content", "content", "mode"]
    ratings = {urn_name(f.urn): (f.severity, f.rule) for f in result.opened}
    assert ratings["api-token"] == ("critical", "secret drift")
    assert ratings["motd"] == (None, None)
    assert all(f.attribution is None for f in result.opened)  # none given
