"""Two hosts sharing one PostgreSQL store: a stack that one host scans is busy for the
other, whatever their state directories (a flock would see only its own host)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftwarden.store.audit import load_audit_key
from driftwarden.store.db import open_store
from driftwarden.store.locks import try_stack_lock
from tests.integration.conftest import DemoStack, Fleet
from tests.pgserver import PostgresServer, create_database, drop_database
from tests.store.conftest import postgres_server

__all__ = ["postgres_server"]

pytestmark = pytest.mark.engine

# Host A, as a separate process: holds the stack lock in the shared store until killed.
HOLDER = """
import sys, time
from driftwarden.store.db import open_store
from driftwarden.store.locks import try_stack_lock
from driftwarden.store.audit import load_audit_key
from pathlib import Path
store = open_store(sys.argv[1], load_audit_key(Path(sys.argv[2]), create=False))
held = try_stack_lock(store, "demo")
print("held" if held else "busy", flush=True)
time.sleep(600)
"""


def test_a_stack_scanned_on_one_host_is_busy_on_another(
    fleet: Fleet, demo: DemoStack, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    name = f"shared_{os.getpid()}"
    url = create_database(postgres_server, name)
    try:
        fleet.write_config(f'database_url = "{url}"')
        assert fleet.scan("--check", "drift").code == 0  # the store exists and is migrated
        host_a = subprocess.Popen(
            [sys.executable, "-c", HOLDER, url, str(fleet.state_dir)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert host_a.stdout is not None
            assert host_a.stdout.readline().strip() == "held"
            busy = fleet.scan("--no-wait", "--check", "drift")
            assert busy.code == 1
            assert "stack 'demo' is being scanned by another driftwarden process" in busy.stderr
            host_a.kill()  # host A lost mid-scan: its session ends, the server frees the lock
            host_a.wait(timeout=30)
            deadline = time.monotonic() + 30
            store = open_store(url, load_audit_key(fleet.state_dir, create=False))
            try:
                while (held := try_stack_lock(store, "demo")) is None:
                    assert time.monotonic() < deadline, "the dead host's lock was never freed"
                    time.sleep(0.2)
                held.release()
            finally:
                store.close()
            assert fleet.scan("--no-wait", "--check", "drift").code == 0
        finally:
            if host_a.poll() is None:
                host_a.kill()
    finally:
        drop_database(postgres_server, name)
