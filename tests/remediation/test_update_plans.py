"""The plan applied is the plan confirmed: `up` remediation saves Pulumi's update plan,
shows and judges it, and applies exactly it (`up --plan`) on the real engine."""

from __future__ import annotations

import json
import os
import select
import stat
import subprocess
import time
from pathlib import Path

import pytest

from driftwarden.config import load_config
from driftwarden.domain.model import RemediationMode, Trigger
from driftwarden.service.runtime import Runtime
from driftwarden.service.scan.remediate import Remediation, remediate
from driftwarden.service.statedir import ENV_STATE_DIR
from tests.cli import DRIFTWARDEN
from tests.integration.conftest import DemoStack, Fleet
from tests.remediation.test_remediation import history

pytestmark = pytest.mark.engine

README_TEXT = "Managed by Pulumi (stacks/local-demo). Edit me to make drift.\n"
SOMEONE_ELSE = "edited-while-you-read-the-plan-31f2\n"


def open_runtime(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.delenv(ENV_STATE_DIR, raising=False)
    return Runtime.open(load_config(fleet.config_path))


def test_the_confirmed_plan_is_applied_and_its_file_removed(
    fleet: Fleet, demo: DemoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    (demo.files / "motd.txt").write_text("HACKED\n")
    runtime = open_runtime(fleet, monkeypatch)
    seen: list[tuple[list[str], list[int]]] = []

    def confirm(planned: Remediation) -> bool:
        plans = list(runtime.plan_dir.iterdir())
        seen.append(([c.name for c in planned.plan],
                     [stat.S_IMODE(p.stat().st_mode) for p in plans]))  # fmt: skip
        return True

    stack = runtime.config.stack("demo")
    result = remediate(runtime, stack, RemediationMode.UP, actor="test", trigger=Trigger.CLI,
                       approved=True,
                       confirm=confirm)  # fmt: skip
    assert seen == [(["motd"], [0o600])], "one plan, private, shown before it was applied"
    assert result.status == "succeeded", result.error
    assert (demo.files / "motd.txt").read_text() == "hello\n"
    assert list(runtime.plan_dir.iterdir()) == []


def test_a_declined_plan_changes_nothing(
    fleet: Fleet, demo: DemoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    (demo.files / "motd.txt").write_text("HACKED\n")
    runtime = open_runtime(fleet, monkeypatch)
    stack = runtime.config.stack("demo")
    result = remediate(runtime, stack, RemediationMode.UP, actor="test", trigger=Trigger.CLI,
                       approved=True,
                       confirm=lambda _planned: False)  # fmt: skip
    assert result.status == "declined"
    assert result.apply_operation_id is None
    assert (demo.files / "motd.txt").read_text() == "HACKED\n"
    assert list(runtime.plan_dir.iterdir()) == []


def read_until(fd: int, marker: str, timeout: float) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {marker!r} in:\n{seen}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                seen += os.read(fd, 4096).decode(errors="replace")
            except OSError:  # the other side closed
                break
    return seen


def test_the_world_changing_after_confirmation_stops_the_remediation(
    fleet: Fleet, demo: DemoStack
) -> None:
    """At a terminal: the plan is shown, someone edits another file while the user reads
    it, the user says yes. The engine refuses to go beyond the plan shown."""
    (demo.files / "motd.txt").write_text("HACKED\n")
    primary, secondary = os.openpty()
    process = subprocess.Popen(
        [str(DRIFTWARDEN), "--config", str(fleet.config_path), "remediate", "demo", "--mode",
         "up"],
        stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True,
        env={k: v for k, v in os.environ.items() if k != ENV_STATE_DIR} | {"COLUMNS": "200"},
    )  # fmt: skip
    os.close(secondary)
    try:
        shown = read_until(primary, "apply this up to demo?", 300)
        assert "motd" in shown
        assert "readme" not in shown
        (demo.files / "README.txt").write_text(SOMEONE_ELSE)
        os.write(primary, b"y\n")
        output = read_until(primary, "status:", 300)
        output += read_until(primary, "\n", 30)
        assert process.wait(timeout=60) == 1
    finally:
        if process.poll() is None:
            process.kill()
        os.close(primary)
    assert "status: failed" in output
    assert "changed since the plan was made: readme: content changed" in output
    assert SOMEONE_ELSE.strip() not in output
    assert (demo.files / "README.txt").read_text() == SOMEONE_ELSE  # not reverted unasked
    ops = [(o["kind"], o["status"]) for o in history(fleet)]
    assert [check for check, _ in ops].count("plan-up") == 1, "planned once"
    (up,) = [o for o in history(fleet) if o["kind"] == "up"]
    assert up["status"] == "failed"
    assert up["check"] is None, "a remediation step is not a check"
    assert SOMEONE_ELSE.strip() not in json.dumps(up)
    assert list((fleet.state_dir / "plans").iterdir()) == []


def test_plans_live_in_a_private_directory(fleet: Fleet, demo: DemoStack) -> None:
    (demo.files / "motd.txt").write_text("HACKED\n")
    done = fleet.cli("remediate", "demo", "--mode", "up", "--yes", "--json")
    assert json.loads(done.stdout)["guarantee"] == "exact_plan", done.stderr
    plans = fleet.state_dir / "plans"
    assert stat.S_IMODE(plans.stat().st_mode) == 0o700
    assert list(plans.iterdir()) == []
    assert Path(demo.files / "motd.txt").read_text() == "hello\n"
