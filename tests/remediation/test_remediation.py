"""Guarded remediation on the real engine: local-demo stacks, a real webhook endpoint."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import DemoStack, Fleet
from tests.notify.conftest import HttpEndpoint

pytestmark = pytest.mark.engine


def configure(fleet: Fleet, endpoint: HttpEndpoint, **policy: Any) -> None:
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in policy.items())
    fleet.write_config(
        f'\n[remediation]\n{lines}\n\n[notifications]\ndefault_targets = ["hook"]\n\n'
        f'[[targets]]\nname = "hook"\nurls = ["{endpoint.url()}"]\n'
    )


def history(fleet: Fleet) -> list[dict[str, Any]]:
    result = fleet.cli("history", "--json", "--limit", "100")
    operations: list[dict[str, Any]] = json.loads(result.stdout)["operations"]
    return list(reversed(operations))  # oldest first


def titles(endpoint: HttpEndpoint) -> list[str]:
    return [request.json()["title"] for request in endpoint.requests]


def bodies(endpoint: HttpEndpoint) -> str:
    return "\n".join(request.json()["message"] for request in endpoint.requests)


def test_up_restores_the_file_and_verifies(
    fleet: Fleet, demo: DemoStack, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, http_endpoint, policy="up")
    motd = demo.files / "motd.txt"
    motd.write_text("HACKED\n")
    assert fleet.scan("--check", "drift").code == 3  # what the scan found
    assert motd.read_text() == "hello\n"  # …and what remediation did about it
    ops = [(o["kind"], o["trigger"], o["status"], o["outcome"]) for o in history(fleet)]
    assert ops == [
        ("drift", "cli", "succeeded", "drifted"),
        ("plan-up", "remediation", "succeeded", "planned"),
        ("up", "remediation", "succeeded", "applied"),
        ("drift", "remediation", "succeeded", "in_sync"),
    ]
    assert json.loads(fleet.cli("drift", "show", "demo", "--json").stdout)["findings"] == []
    assert "[driftwarden] demo: remediation (up) done; the stack is in sync" in titles(
        http_endpoint
    )


def test_refresh_accepts_the_live_value_into_state(
    fleet: Fleet, demo: DemoStack, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, http_endpoint, policy="refresh")
    motd = demo.files / "motd.txt"
    motd.write_text("HACKED\n")
    assert fleet.scan("--check", "drift").code == 3
    assert motd.read_text() == "HACKED\n"  # the file stays as edited
    assert fleet.scan("--check", "drift").code == 0  # the state took the live value
    assert "HACKED" in fleet.state_file(demo).read_text()
    assert "[driftwarden] demo: remediation (refresh) done; the stack is in sync" in titles(
        http_endpoint
    )


@pytest.mark.parametrize(
    ("policy", "guardrail", "resource"),
    [
        ({"policy": "refresh"}, "allow_delete", "readme"),
        ({"policy": "up", "max_changes": 1}, "max_changes", "settings"),
        ({"policy": "up", "protect": ["*::motd"]}, "protect", "motd"),
    ],
    ids=["delete", "max_changes", "protect"],
)
def test_guardrails_refuse_and_nothing_changes(
    fleet: Fleet,
    demo: DemoStack,
    http_endpoint: HttpEndpoint,
    policy: dict[str, Any],
    guardrail: str,
    resource: str,
) -> None:
    configure(fleet, http_endpoint, **policy)
    motd, settings = demo.files / "motd.txt", demo.files / "app" / "settings.ini"
    motd.write_text("HACKED\n")
    settings.chmod(0o666)
    if guardrail == "allow_delete":
        (demo.files / "README.txt").unlink()
    state_before = fleet.state_file(demo).read_bytes()
    assert fleet.scan("--check", "drift").code == 3
    assert fleet.state_file(demo).read_bytes() == state_before
    assert motd.read_text() == "HACKED\n"
    assert oct(settings.stat().st_mode & 0o777) == "0o666"
    checks = [o["kind"] for o in history(fleet)]
    assert "up" not in checks
    assert "refresh" not in checks
    (title,) = [t for t in titles(http_endpoint) if "remediation" in t]
    assert "refused by its guardrails; nothing was changed" in title
    body = bodies(http_endpoint)
    assert f"{guardrail}:" in body
    assert resource in body


def test_a_plan_that_replaces_is_refused(
    fleet: Fleet, demo: DemoStack, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, http_endpoint, policy="up")
    fleet.pulumi(demo, "config", "set", "motdPath", "messages/motd.txt")  # forces a replace
    (demo.files / "motd.txt").write_text("HACKED\n")
    assert fleet.scan("--check", "drift").code == 3
    assert (demo.files / "motd.txt").read_text() == "HACKED\n"
    assert not (demo.files / "messages").exists()
    body = bodies(http_endpoint)
    assert "allow_replace: the plan replaces motd" in body


def test_manual_approval_waits_for_remediate_yes(
    fleet: Fleet, demo: DemoStack, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, http_endpoint, policy="up", approval="manual")
    motd = demo.files / "motd.txt"
    motd.write_text("HACKED\n")
    for _ in range(2):
        assert fleet.scan("--check", "drift").code == 3
    assert motd.read_text() == "HACKED\n"
    approval = [r.json() for r in http_endpoint.requests if "needs approval" in r.json()["title"]]
    assert len(approval) == 1  # asked once, not per scan
    assert "driftwarden remediate demo --mode up --yes" in approval[0]["message"]

    not_a_terminal = fleet.cli("remediate", "demo", "--mode", "up")
    assert not_a_terminal.code == 2
    assert "without --yes when not on a terminal" in not_a_terminal.stderr
    assert motd.read_text() == "HACKED\n"

    approved = fleet.cli("remediate", "demo", "--mode", "up", "--yes", "--json")
    assert approved.code == 0, approved.stderr
    assert json.loads(approved.stdout)["status"] == "succeeded"
    assert motd.read_text() == "hello\n"
    up = [o for o in history(fleet) if o["kind"] == "up"]
    assert len(up) == 1
    assert up[0]["trigger"] == "cli"
    assert "@" in up[0]["actor"]  # the approving user, not the daemon
    audit = [json.loads(line) for line in fleet.cli("audit", "export").stdout.splitlines()]
    (event,) = [e for e in audit if e["activity_name"] == "remediation.approved"]
    assert event["actor"]["user"]["name"] == up[0]["actor"]


def test_after_consecutive_waits_for_persistent_drift(
    fleet: Fleet, demo: DemoStack, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, http_endpoint, policy="up", after_consecutive=2)
    motd = demo.files / "motd.txt"
    motd.write_text("HACKED\n")
    assert fleet.scan("--check", "drift").code == 3
    assert motd.read_text() == "HACKED\n"
    assert [o["kind"] for o in history(fleet)] == ["drift"]
    assert fleet.scan("--check", "drift").code == 3
    assert motd.read_text() == "hello\n"
    assert [o["kind"] for o in history(fleet)][-3:] == ["plan-up", "up", "drift"]


def test_dry_run_only_shows_the_plan_and_its_verdict(
    fleet: Fleet, demo: DemoStack, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, http_endpoint)  # policy none: nothing automatic
    (demo.files / "motd.txt").write_text("HACKED\n")
    (demo.files / "README.txt").unlink()
    result = fleet.cli("remediate", "demo", "--mode", "refresh", "--dry-run", "--json")
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["status"] == "dry_run"
    assert {c["change"] for c in plan["plan"]} == {"update", "delete"}
    assert plan["allowed"] is False
    assert plan["reasons"] == ["allow_delete: the plan deletes readme"]
    assert (demo.files / "motd.txt").read_text() == "HACKED\n"


def test_the_cli_remediates_each_stack_right_after_its_check_like_the_daemon(
    fleet: Fleet, http_endpoint: HttpEndpoint
) -> None:
    """One flow for `scan` and the daemon: check, record, remediate, then the next stack
    (the CLI used to remediate only after every stack was scanned)."""
    alpha = fleet.add("alpha", checks=("drift",), pulumi_stack="alpha")
    bravo = fleet.add("bravo", checks=("drift",), pulumi_stack="bravo")
    configure(fleet, http_endpoint, policy="up")
    for stack in (alpha, bravo):
        (stack.files / "motd.txt").write_text("HACKED\n")
    # One stack at a time, so the order is the flow's (side by side, each stack's own
    # operations keep this order; test_parallel_scan).
    assert fleet.scan("--all", "--parallel", "1").code == 3
    ops = [(o["stack"], o["kind"], o["trigger"]) for o in history(fleet)]
    assert ops == [
        ("alpha", "drift", "cli"), ("alpha", "plan-up", "remediation"),
        ("alpha", "up", "remediation"), ("alpha", "drift", "remediation"),
        ("bravo", "drift", "cli"), ("bravo", "plan-up", "remediation"),
        ("bravo", "up", "remediation"), ("bravo", "drift", "remediation"),
    ]  # fmt: skip
    assert {o["actor"] for o in history(fleet)} == {o["actor"] for o in history(fleet)[:1]}
