"""`scan --all` runs up to `--parallel` stacks at once ([daemon] max_parallel by
default) and prints them in config order, as a serial scan would."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.cli import DRIFTWARDEN
from tests.daemon.test_daemon import processes_in
from tests.integration.conftest import DemoStack, Fleet

pytestmark = pytest.mark.engine


@contextmanager
def busiest(stacks: list[DemoStack]) -> Iterator[list[int]]:
    """The most stacks whose program ran at one moment (sampled every 50 ms), as [n]."""
    most = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            most[0] = max(most[0], sum(1 for s in stacks if processes_in(s.workdir)))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield most
    finally:
        done.set()
        sampler.join(timeout=10)


def scan(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DRIFTWARDEN), "--config", str(fleet.config_path), "scan", "--all", *args],
        capture_output=True, text=True, timeout=600, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_scan_all_runs_stacks_side_by_side_and_prints_them_in_config_order(fleet: Fleet) -> None:
    stacks = [fleet.add(name, checks=("drift",), pulumi_stack=name)
              for name in ("alpha", "bravo", "charlie")]  # fmt: skip
    (stacks[1].files / "motd.txt").write_text("edited by hand\n")

    with busiest(stacks) as side_by_side:  # [daemon] max_parallel = 2, the default
        parallel = scan(fleet, "--json")
    assert parallel.returncode == 3, parallel.stderr
    printed = [(r["stack"], r["status"]) for r in json.loads(parallel.stdout)["results"]]
    assert printed == [("alpha", "in_sync"), ("bravo", "drifted"), ("charlie", "in_sync")]
    assert side_by_side[0] == 2, "two stacks never ran at once"

    with busiest(stacks) as one_at_a_time:
        serial = scan(fleet, "--parallel", "1")
    assert serial.returncode == 3, serial.stderr
    assert one_at_a_time[0] == 1
    first_words = [line.split()[0] for line in serial.stdout.splitlines() if line.strip()]
    assert [word for word in first_words if word in ("alpha", "bravo", "charlie")] == [
        "alpha", "bravo", "charlie"]  # fmt: skip
