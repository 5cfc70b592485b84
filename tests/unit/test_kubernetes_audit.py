"""The Kubernetes API server's audit events, as recorded from the real server by
scripts/record-kubernetes-events (k8s-audit.jsonl): what sources/kubernetes.py keeps,
drops and redacts, and how it tells people from the engine and the controllers."""

from __future__ import annotations

import collections
import json
from pathlib import Path

from driftwarden.domain.model import REDACTED
from driftwarden.sources.kubernetes import BODY_LIMIT, read_event, read_event_list
from tests.conftest import EVENTS

AUDIT = EVENTS / "k8s-audit.jsonl"


def lines() -> list[str]:
    return AUDIT.read_text().splitlines()


def kept() -> list[tuple[str, str, str, str | None]]:
    found = []
    for line in lines():
        event = read_event(line, "cluster").event
        if event is not None and not event.engine:
            found.append((event.people, event.verb, event.object.resource, event.object.name))
    return found


def test_the_people_are_kept_with_both_identities_of_an_impersonation() -> None:
    people = kept()
    assert ("mallory", "patch", "services", "web") in people
    assert ("admin as eve", "patch", "configmaps", "app-config") in people
    assert ("mallory", "create", "clusterrolebindings", "backdoor") in people
    assert ("admin as eve", "create", "rolebindings", "sneaky") in people
    assert ("mallory", "create", "secrets", "stolen") in people
    assert ("mallory", "patch", "configmaps", "extra") in people  # server-side apply
    assert ("mallory", "delete", "clusterrolebindings", "backdoor") in people
    (eve,) = [read_event(line, "cluster").event for line in lines()
              if '"sneaky"' in line and '"create"' in line]  # fmt: skip
    assert eve is not None
    assert (eve.user, eve.impersonated_user) == ("admin", "eve")
    assert eve.impersonated_groups == ("system:masters", "system:authenticated")
    assert eve.user_agent.startswith("kubectl/v1.33.13")
    assert eve.field_manager == "kubectl-create"
    assert "subjects" in " ".join(eve.fields)


def test_every_write_of_the_engine_survives_and_is_known_as_the_engines() -> None:
    engine = [read_event(line, "cluster").event for line in lines() if "pulumi-kubernetes/" in line]
    stored = [event for event in engine if event is not None]
    # Server-side apply at Metadata level: nothing dropped (one 409 conflict is not a write).
    assert {event.object.resource for event in stored} >= {
        "namespaces", "configmaps", "secrets", "serviceaccounts", "roles", "rolebindings",
        "clusterroles", "clusterrolebindings", "networkpolicies", "services", "deployments",
    }  # fmt: skip
    assert all(event.engine for event in stored)
    assert all((event.field_manager or "").startswith("pulumi-kubernetes-") for event in stored)


def test_the_profile_drops_machinery_failures_and_reads() -> None:
    verdicts = collections.Counter(read_event(line, "cluster").dropped for line in lines())
    assert verdicts["machinery"] > 50  # controllers, their service accounts, the API server
    assert verdicts["failed"] >= 1  # the 409 of a field conflict, 404s at start-up
    users = {json.loads(line)["user"]["username"] for line in lines()
             if read_event(line, "cluster").event is not None}  # fmt: skip
    assert users == {"admin", "mallory"}
    read = dict(json.loads(lines()[0]), verb="get")
    assert read_event(read, "cluster").dropped == "read"


def test_secrets_never_reach_an_event() -> None:
    for line in lines():
        event = read_event(line, "cluster").event
        if event is not None and event.object.resource == "secrets":
            assert event.body is None
            assert event.fields == ()


def test_sensitive_paths_are_redacted_before_anything_is_kept() -> None:
    (line,) = [line for line in lines() if '"sneaky"' in line and '"create"' in line]
    event = read_event(line, "cluster", sensitive=("subjects",)).event
    assert event is not None
    assert event.body["subjects"] == REDACTED
    assert "eve" not in json.dumps(event.body)


def test_bad_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    (good,) = [line for line in lines() if '"backdoor"' in line and '"create"' in line]
    huge = json.loads(good)
    huge["requestObject"]["metadata"]["annotations"] = {"blob": "x" * (10 * 1024 * 1024)}
    cases = {
        "not json": "malformed",
        good[: len(good) // 2]: "malformed",  # a truncated last line
        json.dumps([1, 2]): "malformed",
        json.dumps({"kind": "Event", "verb": "create"}): "malformed",
    }
    for line, reason in cases.items():
        assert read_event(line, "cluster").dropped == reason
    big = read_event(json.dumps(huge), "cluster").event
    assert big is not None  # a 10 MB event is kept: who and what, without its body
    assert big.body is None
    assert len(json.dumps(huge)) > BODY_LIMIT
    unknown = dict(json.loads(good))
    unknown["objectRef"] = {"apiGroup": "widgets.example.com", "resource": "gadgets",
                            "name": "g1", "namespace": "ns"}  # fmt: skip
    event = read_event(unknown, "cluster").event
    assert event is not None
    assert event.object.api_group == "widgets.example.com"


def test_a_webhook_batch_is_an_event_list() -> None:
    items = [json.loads(line) for line in lines()[:10]]
    verdicts = read_event_list({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                                "items": items}, "hook")  # fmt: skip
    assert len(verdicts) == 10
    try:
        read_event_list({"kind": "Event"}, "hook")
    except ValueError:
        pass
    else:
        raise AssertionError("a single Event is not a batch")
