"""However the daemon stops (SIGKILL early in a worker's life, SIGTERM to every process
of the service at once, a notify socket nobody drains), the engine tree ends with it,
the check reads `cancelled`, and nothing the engine reported reaches stderr."""

from __future__ import annotations

import functools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import pytest

from driftwarden.config import load_config
from driftwarden.engine.api import Action
from driftwarden.engine.runner import Engine
from driftwarden.service.runtime import engine_target
from driftwarden.service.statedir import StateDir
from driftwarden.system.processes import processes_marked
from tests.conftest import REPO
from tests.daemon.test_daemon import Daemon, by_stack, operations, processes_in, wait_for
from tests.integration.conftest import DemoStack, Fleet

pytestmark = pytest.mark.engine

TREE_MARK = "DRIFTWARDEN_TEST_TREE"
# The program says it is running (a file in its directory), then hangs.
HANG = "import pathlib, time\npathlib.Path('hanging').touch()\ntime.sleep(300)\n"


def start_driver(
    fleet: Fleet, stack: DemoStack, action: str, mark: str, stderr: Path
) -> subprocess.Popen[str]:
    """A stand-in daemon: one isolated check, every process it starts marked `mark`."""
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"} | {TREE_MARK: mark}
    with stderr.open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.daemon.isolated_driver", str(fleet.config_path),
             stack.name, action],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # gone
        return ""


def tree_ended(mark: str) -> bool:
    return not tree(mark)


def tree(mark: str) -> list[int]:
    return processes_marked(TREE_MARK, mark)


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.6, 1.0])
def test_an_engine_tree_dies_with_a_daemon_killed_while_its_worker_starts(
    fleet: Fleet, tmp_path: Path, delay: float
) -> None:
    stack = fleet.add("hang", checks=("code",))
    main = stack.workdir / "__main__.py"
    main.write_text(main.read_text() + HANG)
    mark = uuid.uuid4().hex
    driver = start_driver(fleet, stack, "code", mark, tmp_path / "stderr")
    assert driver.stdout is not None
    assert driver.stdout.readline().strip() == "spawning"
    time.sleep(delay)
    driver.kill()
    driver.wait(timeout=30)
    # The worker must notice, however early: the program would otherwise hang for 300 s.
    wait_for(lambda: not tree(mark), 30, f"the engine tree to end (left: {tree(mark)})")
    assert processes_in(stack.workdir) == []


def test_a_progress_reporter_that_fails_never_prints_the_engine_event(
    fleet: Fleet, capfd: pytest.CaptureFixture[str]
) -> None:
    """A worker whose daemon is gone fails to report progress (BrokenPipeError). The
    Automation API prints the whole event, values and all, when its callback raises."""
    stack = fleet.add("demo", checks=("code",))
    main = stack.workdir / "__main__.py"
    main.write_text(
        main.read_text() + "LocalFile('extra', root=root, path='extra.txt',"
        " content='value-never-printed-5b1e', mode='0644')\n"
    )
    config = load_config(fleet.config_path)
    target = engine_target(config.stack("demo"), StateDir.for_config(config))

    def dead_parent(_line: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = Engine().run(target, Action.CODE, dead_parent)
    printed = capfd.readouterr()
    assert [str(w.message)[:80] for w in caught] == []
    assert "value-never-printed-5b1e" not in printed.out + printed.err
    assert any("resourcePreEvent" in event for event in run.events), "the check still ran"


def signal_service(mark: str, sig: signal.Signals) -> None:
    """What systemd's default KillMode does on stop: every process of the service at once."""
    for pid in tree(mark):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


def test_sigterm_to_every_process_of_the_service_reads_as_cancelled(fleet: Fleet) -> None:
    stack = fleet.add("hang", checks=("code",), schedule="every 1h")
    main = stack.workdir / "__main__.py"
    main.write_text(main.read_text() + HANG)
    fleet.write_config(
        '[notifications]\ncheck_failing_after = 2\ndefault_targets = ["hook"]\n'
        '[[targets]]\nname = "hook"\nurls = ["json://127.0.0.1:9/hook"]\n'
    )
    for _ in range(2):  # two stops in a row: no false "failing (2 times in a row)"
        mark = uuid.uuid4().hex
        before = {op["id"] for op in operations(fleet)}
        daemon = Daemon(fleet, {TREE_MARK: mark})
        try:
            wait_for((stack.workdir / "hanging").exists, 90, "the program running")
            (stack.workdir / "hanging").unlink()
            signal_service(mark, signal.SIGTERM)
            assert daemon.wait(timeout=60) == 0
        finally:
            daemon.kill()
        new = [op for op in by_stack(operations(fleet), "hang") if op["id"] not in before]
        assert [(op["status"], op["error_kind"]) for op in new] == [("cancelled", "cancelled")]
        wait_for(functools.partial(tree_ended, mark), 30, "the engine tree to end")
        fleet.cli("trigger", "hang")  # the next daemon scans it at once
    with sqlite3.connect(
        f"{(fleet.state_dir / 'driftwarden.db').as_uri()}?mode=ro", uri=True
    ) as db:
        events = [row[0] for row in db.execute("SELECT event FROM notifications")]
    assert "check.failing" not in events


def test_a_notify_socket_nobody_drains_does_not_hang_the_daemon(
    fleet: Fleet, tmp_path: Path
) -> None:
    fleet.add("demo", checks=("drift",), schedule="every 1h")
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK) as filler:
            try:  # fill the receiver's queue: every further send would block
                while True:
                    filler.sendto(b"STATUS=filler", str(path))
            except BlockingIOError:
                pass
        daemon = Daemon(fleet, {"NOTIFY_SOCKET": str(path)})
        try:
            wait_for(lambda: by_stack(operations(fleet), "demo", status="succeeded"), 90, "a scan")
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(timeout=60) == 0
        finally:
            daemon.kill()


def test_a_history_read_that_hangs_is_stopped_like_a_check(fleet: Fleet) -> None:
    """`pulumi stack history` blocks on a history file that is a FIFO (seen: forever).
    The read runs isolated, under the stack's timeout and the shutdown, like a check."""
    fleet.add("stuck", checks=("drift",), schedule="every 1h", timeout="20s")
    history = fleet.state_dir / "backend" / ".pulumi" / "history" / "local-demo" / "dev"
    os.mkfifo(history / "dev-9999999999999999999.history.json")
    mark = uuid.uuid4().hex
    daemon = Daemon(fleet, {TREE_MARK: mark})
    try:
        # The read times out, the check goes on and succeeds.
        wait_for(lambda: by_stack(operations(fleet), "stuck", status="succeeded"), 120,
                 "the drift check after the history read timed out")  # fmt: skip
        warnings = [line for line in daemon.lines()
                    if line.get("message") == "cannot read the stack's history"]  # fmt: skip
        assert warnings, daemon.log.read_text()
        assert "history read ran longer than its timeout (20s)" in warnings[0]["error"]
        # A shutdown during the read stops it at once.
        fleet.cli("trigger", "stuck")
        wait_for(lambda: any("history" in cmdline(p) for p in tree(mark)), 60,
                 "the next history read")  # fmt: skip
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
        wait_for(lambda: not tree(mark), 30, f"the engine tree to end (left: {tree(mark)})")
    finally:
        daemon.kill()
