"""The notify protocol against a real AF_UNIX datagram socket bound by the test."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwarden.hosts.sdnotify import Notifier

ENV_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def path_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


@pytest.fixture
def abstract_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    name = f"driftwarden-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", f"@{name}")
        yield sock


def _assert_lifecycle(sock: socket.socket) -> None:
    notifier = Notifier.from_environment()
    assert notifier.ready()
    assert sock.recv(4096) == b"READY=1"
    assert notifier.status("scanning 3 stacks")
    assert sock.recv(4096) == b"STATUS=scanning 3 stacks"
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


def test_filesystem_socket(path_socket: socket.socket) -> None:
    _assert_lifecycle(path_socket)


def test_abstract_socket(abstract_socket: socket.socket) -> None:
    _assert_lifecycle(abstract_socket)


def test_status_is_one_line(path_socket: socket.socket) -> None:
    Notifier.from_environment().status("scan failed:\n  stack demo\r\n")
    assert path_socket.recv(4096) == b"STATUS=scan failed: stack demo"


def test_status_is_utf8(path_socket: socket.socket) -> None:
    text = "drift in \u201cprod\u201d \u2013 2 findings: caf\u00e9"
    Notifier.from_environment().status(text)
    assert path_socket.recv(4096) == b"STATUS=" + text.encode("utf-8")


def test_reloading_sends_monotonic_timestamp(path_socket: socket.socket) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert Notifier.from_environment().reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = path_socket.recv(4096).split(b"\n")
    assert first == b"RELOADING=1"
    key, _, value = second.partition(b"=")
    assert key == b"MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_no_socket_is_a_no_op() -> None:
    notifier = Notifier.from_environment()
    assert not notifier.ready()
    assert not notifier.status("x")
    assert not notifier.watchdog()
    assert not notifier.stopping()
    assert not notifier.reloading()
    assert notifier.watchdog_interval is None


def test_missing_socket_path_does_not_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    notifier = Notifier.from_environment()
    assert not notifier.ready()
    assert not notifier.status("still alive")
    assert not notifier.watchdog()
    assert not notifier.stopping()


def test_unbound_abstract_socket_does_not_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", f"@driftwarden-nobody-{uuid.uuid4().hex}")
    assert not Notifier.from_environment().ready()


def test_unsupported_socket_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/notify.sock")
    notifier = Notifier.from_environment()
    assert not notifier.ready()


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    assert Notifier.from_environment().watchdog_interval == 2.0
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    assert Notifier.from_environment().watchdog_interval == 30.0


def test_watchdog_pid_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert Notifier.from_environment().watchdog_interval == 2.0


def test_watchdog_pid_someone_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert Notifier.from_environment().watchdog_interval is None


@pytest.mark.parametrize("value", ["", "0", "-5", "soon"])
def test_watchdog_usec_invalid(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", value)
    assert Notifier.from_environment().watchdog_interval is None


def test_from_explicit_mapping(path_socket: socket.socket) -> None:
    address = os.environ["NOTIFY_SOCKET"]
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000"})
    assert notifier.watchdog_interval == 0.0005
    assert notifier.watchdog()
    assert path_socket.recv(4096) == b"WATCHDOG=1"
