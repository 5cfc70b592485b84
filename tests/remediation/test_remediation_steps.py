"""A remediation step is recorded like a check (one recorded engine run for both): a
timed-out step ends `timed_out`, a Ctrl-C during a step ends it `cancelled`, never
`running` (the program hangs while the step's preview runs it). A remediation's message is
queued the one way every message is, in the transaction of the record it announces."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from driftwarden.system.failpoints import ENV_CRASH_AT
from tests.cli import DRIFTWARDEN
from tests.integration.conftest import DemoStack, Fleet
from tests.integration.test_interrupts import WITH_SIGINT
from tests.notify.conftest import HttpEndpoint
from tests.remediation.test_remediation import configure, titles

pytestmark = pytest.mark.engine


def hang_the_program(demo: DemoStack) -> None:
    """The program (run by `plan-up`'s preview, not by a drift check) marks that it runs,
    then hangs."""
    main = demo.workdir / "__main__.py"
    marker = demo.workdir / "hanging"
    main.write_text(
        f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(120)\n"
        + main.read_text()
    )


def operations(fleet: Fleet) -> list[dict[str, Any]]:
    result = fleet.cli("history", "--json", "--limit", "100")
    ops: list[dict[str, Any]] = json.loads(result.stdout)["operations"]
    return ops


def test_a_timed_out_remediation_step_is_recorded_timed_out(fleet: Fleet, demo: DemoStack) -> None:
    demo.timeout = "5s"
    fleet.write_config()
    hang_the_program(demo)
    result = fleet.cli("remediate", "demo", "--mode", "up", "--yes", "--json")
    assert json.loads(result.stdout)["status"] == "failed"
    (plan,) = [o for o in operations(fleet) if o["kind"] == "plan-up"]
    assert plan["status"] == "timed_out"
    assert "timeout (5s)" in plan["error"]


def test_ctrl_c_during_a_remediation_step_ends_it_cancelled(fleet: Fleet, demo: DemoStack) -> None:
    hang_the_program(demo)
    remediation = subprocess.Popen(
        [sys.executable, "-c", WITH_SIGINT, str(DRIFTWARDEN), "--config",
         str(fleet.config_path), "remediate", "demo", "--mode", "up", "--yes"],
        env=os.environ.copy(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, process_group=0,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not (demo.workdir / "hanging").exists():
            assert remediation.poll() is None, remediation.communicate()
            assert time.monotonic() < deadline, "the plan step never ran the program"
            time.sleep(0.1)
        os.killpg(remediation.pid, signal.SIGINT)  # a terminal's Ctrl-C
        _, stderr = remediation.communicate(timeout=60)
    finally:
        if remediation.poll() is None:
            os.killpg(remediation.pid, signal.SIGKILL)
    assert remediation.returncode == 130, stderr
    assert "error: interrupted" in stderr
    (plan,) = [o for o in operations(fleet) if o["kind"] == "plan-up"]
    assert plan["status"] == "cancelled"
    assert plan["error"] == "stopped before the engine finished"


def test_a_refusal_and_its_message_are_committed_together(
    fleet: Fleet, demo: DemoStack, http_endpoint: HttpEndpoint
) -> None:
    """Killed while recording the refusal: neither the audit event nor its message
    exists; the next scan records both, once (late, never lost, never half)."""
    configure(fleet, http_endpoint, policy="up", protect=["*::motd"])
    (demo.files / "motd.txt").write_text("HACKED\n")
    scan = [str(DRIFTWARDEN), "--config", str(fleet.config_path), "scan", "--check", "drift"]
    # The plan step's end (1), the plan's record (2), the refusal with its message (3).
    crashed = subprocess.run(
        scan, env={**os.environ, ENV_CRASH_AT: "remediation.before-commit#3"},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr

    def refusals() -> tuple[int, int]:
        events = [json.loads(line) for line in fleet.cli("audit", "export").stdout.splitlines()]
        refused = [e for e in events if e["activity_name"] == "remediation.refused"]
        queued = json.loads(fleet.cli("notify", "list", "--json").stdout)["notifications"]
        messages = [n for n in queued if "refused by its guardrails" in n["title"]]
        return len(refused), len(messages)

    assert refusals() == (0, 0)
    assert fleet.scan("--check", "drift").code == 3
    assert refusals() == (1, 1)
    assert any("refused by its guardrails" in t for t in titles(http_endpoint))
