"""`scan --all` runs up to `--parallel` stacks at once ([daemon] max_parallel by
default) and prints them in config order, as a serial scan would."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

from tests.cli import DRIFTWARDEN
from tests.daemon.test_daemon import processes_in, sampling
from tests.integration.conftest import DemoStack, Fleet

pytestmark = pytest.mark.engine


def stacks_running(stacks: list[DemoStack]) -> Callable[[], int]:
    """How many of `stacks` have an engine process (one runs in the stack's directory)."""
    return lambda: sum(1 for stack in stacks if processes_in(stack.workdir))


def scan(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DRIFTWARDEN), "--config", str(fleet.config_path), "scan", "--all", *args],
        capture_output=True, text=True, timeout=600, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_scan_all_runs_stacks_side_by_side_and_prints_them_in_config_order(fleet: Fleet) -> None:
    stacks = [fleet.add(name, checks=("drift",), pulumi_stack=name)
              for name in ("alpha", "bravo", "charlie")]  # fmt: skip
    (stacks[1].files / "motd.txt").write_text("edited by hand\n")

    with sampling(stacks_running(stacks)) as side_by_side:  # max_parallel = 2, the default
        parallel = scan(fleet, "--json")
    assert parallel.returncode == 3, parallel.stderr
    printed = [(r["stack"], r["status"]) for r in json.loads(parallel.stdout)["results"]]
    assert printed == [("alpha", "in_sync"), ("bravo", "drifted"), ("charlie", "in_sync")]
    assert max(side_by_side) == 2, "two stacks never ran at once"

    with sampling(stacks_running(stacks)) as one_at_a_time:
        serial = scan(fleet, "--parallel", "1")
    assert serial.returncode == 3, serial.stderr
    assert max(one_at_a_time) == 1
    first_words = [line.split()[0] for line in serial.stdout.splitlines() if line.strip()]
    assert [word for word in first_words if word in ("alpha", "bravo", "charlie")] == [
        "alpha", "bravo", "charlie"]  # fmt: skip
