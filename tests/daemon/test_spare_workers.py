"""The daemon's engine workers are started ahead of the call that needs them (each still
serves one call in a process group of its own), and retired when the daemon idles."""

from __future__ import annotations

import os
import time

import pytest

from driftwarden.config import load_config
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


def test_a_spare_serves_the_next_call_and_idle_spares_are_retired(
    fleet: Fleet, demo: DemoStack
) -> None:
    config = load_config(fleet.config_path)
    target = engine_target(config.stack("demo"), StateDir.for_config(config))
    engine = IsolatedEngine(spares=1)
    try:
        assert [u.kind for u in engine.history(target, timeout=120)] == ["update"]
        (spare,) = engine.spare_pids
        assert alive(spare)
        assert engine.history(target, timeout=120)  # served by the spare, which then exits
        deadline = time.monotonic() + 10
        while alive(spare) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(spare), "a worker serves one call only"
        (next_spare,) = engine.spare_pids
        assert next_spare != spare

        engine.retire_idle(time.monotonic() + SPARE_IDLE_SECONDS / 2)
        assert engine.spare_pids == [next_spare], "retired before its time"
        engine.retire_idle(time.monotonic() + SPARE_IDLE_SECONDS + 1)
        assert engine.spare_pids == []
        assert not alive(next_spare)
    finally:
        engine.close()
    assert engine.spare_pids == []
