"""The stacks' own update history in the audit trail: a `pulumi up` run by someone else,
straight with the CLI, is recorded once, with its git author, result and counts."""

from __future__ import annotations

import logging
import os
import subprocess
from typing import Any

import pytest

from driftwarden.config import load_config
from driftwarden.engine.api import history_stamp
from driftwarden.service.runtime import Runtime, engine_target
from driftwarden.service.scan.history import ingest_history
from driftwarden.store.updates import record_history_stamp
from tests.cli import DRIFTWARDEN
from tests.integration.conftest import DemoStack, Fleet

pytestmark = pytest.mark.engine

AUTHOR = "Ada Lovelace"
EMAIL = "ada@example.com"


def git(demo: DemoStack, *args: str) -> None:
    subprocess.run(
        ["git", "-c", f"user.name={AUTHOR}", "-c", f"user.email={EMAIL}", *args],
        cwd=demo.workdir, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def stack_updates(fleet: Fleet) -> list[dict[str, Any]]:
    result = fleet.cli("audit", "log", "--stack", "demo", "--json", "--limit", "200")
    assert result.code == 0, result.stderr
    events: list[dict[str, Any]] = result.json["events"]
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


def drift_changes(fleet: Fleet, check: str = "drift") -> dict[str, dict[str, Any]]:
    scan = fleet.scan("--check", check, "--json")
    assert scan.code == 3, scan.stdout + scan.stderr
    return {c["urn"].rsplit("::", 1)[-1]: c for c in scan.result("demo", check)["changes"]}


def test_drift_is_attributed_out_of_band_or_to_the_update_that_failed(
    fleet: Fleet, demo: DemoStack
) -> None:
    assert fleet.scan("--check", "drift").code == 0  # a check that saw the stack in sync
    (demo.files / "README.txt").write_text("edited by hand\n")
    readme = drift_changes(fleet)["readme"]
    assert readme["attribution"] == {"kind": "out_of_band"}
    (finding,) = fleet.cli("drift", "show", "demo", "--json").json["findings"]
    assert finding["attribution"] == {"kind": "out_of_band"}

    # Someone's update crashes after writing the file: state and disk now disagree.
    provider = demo.workdir / "localfile.py"
    provider.write_text(provider.read_text().replace(
        '    os.chmod(target, int(props["mode"], 8))\n',
        '    os.chmod(target, int(props["mode"], 8))\n'
        '    if "explode" in props["content"]:\n'
        '        raise RuntimeError("provider crashed after writing")\n',
    ))  # fmt: skip
    (demo.workdir / ".gitignore").write_text("venv\nPulumi.*.yaml\n")
    git(demo, "init", "-q")
    git(demo, "add", ".")
    git(demo, "commit", "-q", "-m", "demo with a fragile provider")
    fleet.pulumi(demo, "config", "set", "greeting", "explode\n")
    failed = subprocess.run(
        ["pulumi", "--non-interactive", "up", "--yes", "--skip-preview", "--stack", "dev"],
        cwd=demo.workdir, env=fleet.environment(demo), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert failed.returncode != 0
    assert (demo.files / "motd.txt").read_text() == "explode\n"

    motd = drift_changes(fleet)["motd"]
    assert motd["attribution"]["kind"] == "update"
    assert motd["attribution"]["result"] == "failed"
    assert motd["attribution"]["actor"] == f"{AUTHOR} <{EMAIL}>"
    table = fleet.scan("--check", "drift").stdout
    assert f"update by {AUTHOR} <{EMAIL}> (failed" in table


def test_a_pending_code_change_names_the_newest_commit(fleet: Fleet, demo: DemoStack) -> None:
    (demo.workdir / ".gitignore").write_text("venv\nPulumi.*.yaml\n")
    git(demo, "init", "-q")
    git(demo, "add", ".")
    git(demo, "commit", "-q", "-m", "initial")
    main = demo.workdir / "__main__.py"
    main.write_text(main.read_text().replace("Edit me to make drift.", "Edited in code."))
    git(demo, "commit", "-q", "-am", "reword the readme")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=demo.workdir, capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    readme = drift_changes(fleet, "code")["readme"]
    attribution = readme["attribution"]
    assert attribution["kind"] == "commit"
    assert attribution["commit"] == head
    assert attribution["author"] == f"{AUTHOR} <{EMAIL}>"
    assert attribution["subject"] == "reword the readme"


def test_an_unchanged_history_is_not_read_again_and_a_new_update_is(
    fleet: Fleet, demo: DemoStack, caplog: pytest.LogCaptureFixture
) -> None:
    """A scan reads a stack's history first only when the file backend shows a new update
    since the store last ingested it."""
    config = load_config(fleet.config_path)
    stack = config.stack("demo")
    runtime = Runtime.open(config)
    target = engine_target(stack, runtime.state)
    first = history_stamp(target)
    assert first is not None
    assert ingest_history(runtime, stack) == 1  # the deploy
    # A drift check writes no history, so the stamp holds.
    assert fleet.scan("--check", "drift").code == 0
    assert history_stamp(target) == first

    # The recorded update is unreadable now (rewritten in place: the folder is unchanged),
    # so reading the history would say so.
    history = fleet.state_dir / "backend" / ".pulumi" / "history" / "local-demo" / "dev"
    (update,) = history.glob("*.history.json")
    intact = update.read_bytes()
    update.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="driftwarden"):
        assert ingest_history(runtime, stack) == 0
        assert ingest_history(Runtime.open(config), stack) == 0  # another process, same store
        assert not caplog.records, "the unchanged history was read again"
        with runtime.store.write() as session:  # what the store holds is what decides
            record_history_stamp(session, "demo", "a stamp of another history")
        assert ingest_history(runtime, stack) == 0
        assert [r.getMessage() for r in caplog.records] == ["cannot read the stack's history"]
    update.write_bytes(intact)

    # An update by someone else changes the stamp: it is read and recorded.
    fleet.pulumi(demo, "config", "set", "greeting", "hi\n")
    fleet.pulumi(demo, "up", "--yes", "--skip-preview")
    assert history_stamp(target) != first
    assert ingest_history(runtime, stack) == 1


def test_audit_log_table_fits_the_terminal_and_names_resources(
    fleet: Fleet, demo: DemoStack
) -> None:
    long_author = "Ada Augusta King, Countess of Lovelace and Analytical Engineer"
    (demo.workdir / ".gitignore").write_text("venv\nPulumi.*.yaml\n")
    for args in (("init", "-q"), ("add", "."), ("commit", "-q", "-m", "local demo")):
        identity = ["-c", f"user.name={long_author}", "-c", f"user.email={EMAIL}"]
        subprocess.run(["git", *identity, *args], cwd=demo.workdir, check=True,
                       capture_output=True, timeout=60)  # fmt: skip
    fleet.pulumi(demo, "config", "set", "greeting", "hi\n")
    fleet.pulumi(demo, "up", "--yes", "--skip-preview", "-m", "greet differently")
    (demo.files / "motd.txt").write_text("edited by hand\n")
    assert fleet.scan("--check", "drift").code == 3

    env = {k: v for k, v in os.environ.items() if k != "DRIFTWARDEN_STATE_DIR"}
    table = subprocess.run(
        [str(DRIFTWARDEN), "--config", str(fleet.config_path), "audit", "log"],
        env=env | {"COLUMNS": "100"}, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 100, table
    assert "resource=motd" in table
    assert "urn:pulumi" not in table
    (update,) = [line for line in lines if "stack.update" in line and "Ada" in line]
    assert "Ada Augusta King, Count…" in update
    assert long_author not in table, "the actor column is capped"
    events = fleet.cli("audit", "log", "--json").json["events"]
    rows = [line for line in lines if line[:4].isdigit()]
    assert len(rows) == len(events)
    for row, event in zip(rows, events, strict=True):  # whole times and activities
        assert row.startswith(event["time"] + " ")
        assert f" {event['action']} " in row
    events = fleet.cli("audit", "log", "--json").json["events"]
    opened = [e for e in events if e["action"] == "finding.opened"]
    assert opened
    assert opened[0]["details"]["urn"].startswith("urn:pulumi:dev::local-demo::")
    assert any(e["actor"] == f"{long_author} <{EMAIL}>" for e in events)
