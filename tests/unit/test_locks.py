"""Stack locks across processes, and the file-backend lock clean-up after a killed run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from driftwarden.engine.api import EngineTarget
from driftwarden.engine.locks import remove_stale_locks
from driftwarden.service.locks import StackBusyError, stack_lock
from tests.conftest import REPO


def pulumi_lock(backend: Path, stack: str, pid: int, host: str) -> Path:
    """A lock file as Pulumi's file backend writes it (backend/diy/lock.go: lockContent)."""
    path = backend / ".pulumi" / "locks" / "organization" / "local-demo" / stack / f"{pid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "pid": pid,
                "username": "driftwarden",
                "hostname": host,
                "timestamp": "2026-11-23T19:00:00Z",
            }
        )
    )
    return path


def test_stale_locks_of_dead_local_processes_go_and_the_others_stay(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = socket.gethostname()
    ours_dead = pulumi_lock(tmp_path, "dev", dead.pid, here)
    ours_alive = pulumi_lock(tmp_path, "dev", os.getpid(), here)
    foreign = pulumi_lock(tmp_path, "dev", dead.pid + 1, "another-host")
    other_stack = pulumi_lock(tmp_path, "prod", dead.pid, here)
    target = EngineTarget(
        name="demo", project_dir=REPO / "stacks" / "local-demo", stack="dev",
        backend_url=tmp_path.as_uri(), passphrase_file=tmp_path / "p", pulumi_home=tmp_path,
    )  # fmt: skip
    assert remove_stale_locks(target) == [ours_dead]
    assert not ours_dead.exists()
    assert ours_alive.exists()  # a live process holds it
    assert foreign.exists()  # another host: cannot tell, so respected
    assert other_stack.exists()  # another stack is none of our business


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from driftwarden.service.locks import stack_lock
    with stack_lock(Path(sys.argv[1]), "demo"):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def test_one_holder_per_stack_across_processes(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), "2"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    busy = pytest.raises(StackBusyError, match="being scanned by another driftwarden process")
    with busy, stack_lock(tmp_path, "demo", wait=False):
        pass
    with stack_lock(tmp_path, "other", wait=False):
        pass  # other stacks are free
    started = time.monotonic()
    with stack_lock(tmp_path, "demo"):
        waited = time.monotonic() - started
    assert waited > 0.5  # it waited for the holder to finish
    assert holder.wait(10) == 0


def test_a_dead_holder_releases_the_stack(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), "60"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    with stack_lock(tmp_path, "demo", wait=False):
        pass
