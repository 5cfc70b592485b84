"""Ctrl-C and kill -9 during `driftwarden scan`, on the real engine: one line and exit 130,
no thread's traceback or the SDK's warnings, the operation recorded as stopped, and no
process of the engine's tree (the engine worker, the pulumi CLI, the language host, the
program, its provider) left running — as a terminal's Ctrl-C (to the whole foreground
process group), as a lone SIGINT, and as a SIGKILL of the CLI.

Each scan runs with a variable of its own in its environment, which every process it
starts inherits: a survivor is any live process that still carries it.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftwarden.system.processes import processes_marked
from tests.cli import DRIFTWARDEN
from tests.integration.conftest import DemoStack, Fleet

pytestmark = pytest.mark.engine

MARK = "DRIFTWARDEN_TEST_SCAN"
# What of the engine's tree must be running before the interrupt (in its command lines):
# the pulumi CLI's refresh, the language host, the dynamic provider of the program.
REFRESH = "refresh --preview-only"
LANGUAGE_HOST = "pulumi-language-python"
PROVIDER = "pulumi.dynamic"


# A shell starts a background job with SIGINT ignored, and exec keeps it ignored: the
# scan is started through this, which restores it, as a terminal's shell would.
WITH_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def start_scan(fleet: Fleet, mark: str) -> subprocess.Popen[str]:
    """`driftwarden scan` as a terminal starts it: a process group of its own (the
    foreground job), SIGINT not ignored."""
    return subprocess.Popen(
        [sys.executable, "-c", WITH_SIGINT, str(DRIFTWARDEN), "--config",
         str(fleet.config_path), "scan"],
        env={**os.environ, MARK: mark},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        process_group=0,
    )  # fmt: skip


def command_lines(mark: str) -> list[str]:
    lines = []
    for pid in processes_marked(MARK, mark):
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # ended meanwhile
    return lines


def wait_for(mark: str, needle: str, scan: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(needle in line for line in command_lines(mark)):
        assert scan.poll() is None, f"the scan ended before {needle} ran: {scan.communicate()}"
        assert time.monotonic() < deadline, f"{needle} never ran"
        time.sleep(0.05)


def survivors(mark: str, within: float = 10) -> list[str]:
    """The marked processes still alive after `within` seconds (at once, if none are)."""
    deadline = time.monotonic() + within
    while (alive := command_lines(mark)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


@pytest.mark.parametrize(
    ("how", "when"),
    [("terminal", REFRESH), ("terminal", LANGUAGE_HOST), ("sigint", PROVIDER)],
)
def test_ctrl_c_is_one_line_and_leaves_no_engine_process(
    fleet: Fleet, demo: DemoStack, how: str, when: str
) -> None:
    mark = secrets.token_hex(8)
    scan = start_scan(fleet, mark)
    wait_for(mark, when, scan)
    if how == "terminal":  # Ctrl-C: the terminal signals the whole foreground group
        os.killpg(scan.pid, signal.SIGINT)
    else:
        scan.send_signal(signal.SIGINT)
    stdout, stderr = scan.communicate(timeout=60)
    assert scan.returncode == 130, stderr
    assert stderr == "error: interrupted\n"
    assert stdout == ""
    assert survivors(mark) == []
    history = fleet.cli("history", "--json").json["operations"]
    assert history, "the interrupted check was not recorded"
    assert history[0]["status"] in ("cancelled", "interrupted"), history[0]
    # Nothing was left locked or half done: the next scan runs, in sync.
    assert fleet.scan("--check", "drift").code == 0


def test_a_killed_scan_takes_its_engine_tree_with_it(fleet: Fleet, demo: DemoStack) -> None:
    mark = secrets.token_hex(8)
    scan = start_scan(fleet, mark)
    wait_for(mark, PROVIDER, scan)
    scan.kill()
    scan.communicate(timeout=60)
    assert survivors(mark) == []
    # The next writer finds the lost run and says so; then it scans as usual.
    assert fleet.scan("--check", "drift").code == 0
    statuses = [op["status"] for op in fleet.cli("history", "--json").json["operations"]]
    assert "interrupted" in statuses
    assert "running" not in statuses
