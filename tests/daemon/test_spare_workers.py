"""The daemon's engine workers are started ahead of the call that needs them, serve call
after call (each in the process group of their own), and are retired when the daemon
idles; a worker whose call was stopped is never used again."""

from __future__ import annotations

import os
import threading
import time

import pytest

from driftwarden.config import load_config
from driftwarden.domain.model import ErrorKind
from driftwarden.engine.api import Action, EngineTarget
from driftwarden.engine.errors import EngineError
from driftwarden.engine.isolated import SPARE_IDLE_SECONDS, IsolatedEngine
from driftwarden.service.runtime import engine_target
from driftwarden.service.statedir import StateDir
from tests.integration.conftest import DemoStack, Fleet

pytestmark = pytest.mark.engine


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not alive
        return stat.read().split(") ")[1][0] != "Z"


def spare_pids() -> list[int]:
    """This process's engine workers that are alive (what `ps` shows an operator)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().split(") ")[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        if parent == os.getpid() and b"driftwarden.engine.process" in argv and alive(int(entry)):
            pids.append(int(entry))
    return sorted(pids)


def demo_target(fleet: Fleet) -> EngineTarget:
    config = load_config(fleet.config_path)
    return engine_target(config.stack("demo"), StateDir.for_config(config))


def test_a_worker_serves_call_after_call_and_idle_workers_are_retired(
    fleet: Fleet, demo: DemoStack
) -> None:
    target = demo_target(fleet)
    engine = IsolatedEngine(spares=1)
    try:
        assert [u.kind for u in engine.history(target, timeout=120)] == ["update"]
        (worker,) = spare_pids()
        assert alive(worker)
        run = engine.run(target, Action.DRIFT, timeout=120)  # the same worker again
        assert run.events, "the check ran"
        assert spare_pids() == [worker], "the worker waits for the next call"

        engine.retire_idle(time.monotonic() + SPARE_IDLE_SECONDS / 2)
        assert spare_pids() == [worker], "retired before its time"
        engine.retire_idle(time.monotonic() + SPARE_IDLE_SECONDS + 1)
        assert spare_pids() == []
        assert not alive(worker)
    finally:
        engine.close()
    assert spare_pids() == []


def test_a_stopped_call_takes_its_worker_down_and_a_fresh_one_takes_its_place(
    fleet: Fleet, demo: DemoStack
) -> None:
    target = demo_target(fleet)
    engine = IsolatedEngine(spares=1)
    try:
        engine.history(target, timeout=120)
        (worker,) = spare_pids()
        cancel = threading.Event()
        cancel.set()  # a shutdown already under way when the call starts
        with pytest.raises(EngineError) as stopped:
            engine.run(target, Action.DRIFT, timeout=120, cancel=cancel)
        assert stopped.value.kind is ErrorKind.CANCELLED
        assert not alive(worker), "a stopped worker is never used again"
        (fresh,) = spare_pids()
        assert fresh != worker
        assert engine.history(target, timeout=120)
        assert spare_pids() == [fresh]
    finally:
        engine.close()
