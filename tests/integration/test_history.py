"""The stacks' own update history in the audit trail: a `pulumi up` run by someone else,
straight with the CLI, is recorded once, with its git author, result and counts."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from driftwarden.statedir import ENV_STATE_DIR
from tests.integration.conftest import DRIFTWARDEN, DemoStack, Fleet

pytestmark = pytest.mark.engine

AUTHOR = "Ada Lovelace"
EMAIL = "ada@example.com"


def git(demo: DemoStack, *args: str) -> None:
    subprocess.run(
        ["git", "-c", f"user.name={AUTHOR}", "-c", f"user.email={EMAIL}", *args],
        cwd=demo.workdir, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def stack_updates(fleet: Fleet) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(DRIFTWARDEN), "--config", str(fleet.config_path), "audit", "log", "--stack", "demo",
         "--json", "--limit", "200"],
        capture_output=True, text=True, check=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != ENV_STATE_DIR},
    )  # fmt: skip
    events: list[dict[str, Any]] = json.loads(result.stdout)["events"]
    return [e for e in events if e["action"] == "stack.update"]


def test_an_outside_update_is_recorded_once_with_its_author(fleet: Fleet, demo: DemoStack) -> None:
    (demo.workdir / ".gitignore").write_text("venv\nPulumi.*.yaml\n")
    git(demo, "init", "-q")
    git(demo, "add", ".")
    git(demo, "commit", "-q", "-m", "local demo")
    fleet.pulumi(demo, "config", "set", "greeting", "hi\n")
    fleet.pulumi(demo, "up", "--yes", "--skip-preview", "-m", "greet differently")

    for _ in range(2):
        assert fleet.scan("--check", "drift").code == 0
    by_ada = [e for e in stack_updates(fleet) if AUTHOR in e["actor"]]
    assert len(by_ada) == 1, by_ada  # however many scans follow
    (update,) = by_ada
    assert update["actor"] == f"{AUTHOR} <{EMAIL}>"
    assert update["outcome"] == "succeeded"
    details = update["details"]
    assert details["message"] == "greet differently"
    assert details["resource_changes"]["update"] == 1
    assert details["environment"]["git.author"] == AUTHOR
    assert details["environment"]["pulumi.version"] == "v3.259.0"

    # A failed update is recorded as failed.
    (demo.workdir / "__main__.py").write_text('raise RuntimeError("half-done refactor")\n')
    failed = subprocess.run(
        ["pulumi", "--non-interactive", "up", "--yes", "--skip-preview", "--stack", "dev"],
        cwd=demo.workdir, env=fleet.environment(demo), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert failed.returncode != 0
    assert fleet.scan("--check", "drift").code == 0
    outcomes = [e["outcome"] for e in stack_updates(fleet) if AUTHOR in e["actor"]]
    assert sorted(outcomes) == ["failed", "succeeded"]
