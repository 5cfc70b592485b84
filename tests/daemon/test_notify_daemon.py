"""The daemon speaks systemd's notify protocol over a real AF_UNIX datagram socket."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwarden.hosts.sdnotify import Notifier
from driftwarden.hosts.single import Daemon as InProcessDaemon
from tests.conftest import REPO
from tests.daemon.test_daemon import Daemon
from tests.integration.conftest import Fleet


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    yield path, sock
    sock.close()


def receive(sock: socket.socket, seconds: float) -> list[str]:
    messages = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return messages


def drain(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        while True:
            sock.recv(4096)
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(0.2)


@pytest.mark.engine
def test_ready_status_watchdog_and_stopping(
    fleet: Fleet, notify_socket: tuple[str, socket.socket]
) -> None:
    path, sock = notify_socket
    fleet.add("demo", checks=("drift",), schedule="every 1h")
    fleet.write_config()
    daemon = Daemon(fleet, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    try:
        messages = receive(sock, 8)
        assert messages[0] == "READY=1", messages[:3]
        statuses = [m for m in messages if m.startswith("STATUS=")]
        assert statuses, messages
        assert statuses[0].startswith("STATUS=1 stacks, ")
        assert "running" in statuses[0]
        # WATCHDOG_USEC=1 s: a ping every half second from the loop.
        assert messages.count("WATCHDOG=1") >= 8, messages
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
        assert "STOPPING=1" in receive(sock, 1)
    finally:
        daemon.kill()


def test_a_stalled_loop_stops_the_watchdog_pings(
    tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    path, sock = notify_socket
    config = tmp_path / "driftwarden.toml"
    # One stack (a daemon refuses to run without): never deployed, its scan fails fast.
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[[stacks]]\nname = "absent"\nproject_dir = "{REPO / "stacks" / "local-demo"}"\n'
        'stack = "never-deployed"\nchecks = ["drift"]\n'
    )
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    daemon = InProcessDaemon(config, notifier)
    stall, stalled = threading.Event(), threading.Event()

    def stuck_job() -> None:
        if stall.is_set():
            stalled.set()
            time.sleep(3)  # the loop is stuck here: no pings may go out

    daemon.scheduler.every(1).seconds.do(stuck_job)
    thread = threading.Thread(target=daemon.run, kwargs={"install_signal_handlers": False})
    thread.start()
    try:
        before = receive(sock, 2)
        assert before[0] == "READY=1"
        assert before.count("WATCHDOG=1") >= 5
        stall.set()
        assert stalled.wait(5)
        drain(sock)  # pings queued before the stall began
        during = receive(sock, 2.5)
        assert "WATCHDOG=1" not in during, during
        stall.clear()
        after = receive(sock, 2)
        assert after.count("WATCHDOG=1") >= 3, after
    finally:
        daemon.stop()
        thread.join(timeout=30)
