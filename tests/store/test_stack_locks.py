"""Stack locks in a PostgreSQL store, held across hosts: two stores opened on one
database (each its own engine and sessions) stand for two hosts. The state directories
differ, so a flock could not see the other side."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy
from sqlmodel import col, select

from driftwarden.domain.model import Trigger
from driftwarden.service.locks import StackBusyError, stack_lock
from driftwarden.store.db import Store, open_store
from driftwarden.store.locks import (
    lock_key,
    recover_orphaned,
    try_scheduler_lock,
    try_stack_lock,
    uses_database_locks,
)
from driftwarden.store.models import AuditEvent, Operation
from driftwarden.store.operations import OperationStart, start_operation
from tests.pgserver import PostgresServer, create_database, drop_database
from tests.store.conftest import AUDIT_KEY


@pytest.fixture
def hosts(postgres_server: PostgresServer) -> Iterator[tuple[Store, Store]]:
    name = f"locks_{os.getpid()}_{id(postgres_server) % 10_000}"
    url = create_database(postgres_server, name)
    first, second = open_store(url, AUDIT_KEY), open_store(url, AUDIT_KEY)
    try:
        yield first, second
    finally:
        first.close()
        second.close()
        drop_database(postgres_server, name)


def test_a_stack_locked_on_one_host_is_busy_on_the_other(
    hosts: tuple[Store, Store], tmp_path: Path
) -> None:
    one, other = hosts
    assert uses_database_locks(one)
    with stack_lock(tmp_path / "host-a", "web", store=one):
        busy = stack_lock(tmp_path / "host-b", "web", store=other, wait=False)
        with pytest.raises(StackBusyError, match="being scanned by another driftwarden"), busy:
            pass
        with stack_lock(tmp_path / "host-b", "db", store=other, wait=False):
            pass  # another stack is free
    with stack_lock(tmp_path / "host-b", "web", store=other, wait=False):
        pass  # released with the block


def test_a_waiting_host_gets_the_lock_once_it_is_released(
    hosts: tuple[Store, Store], tmp_path: Path
) -> None:
    one, other = hosts
    held = try_stack_lock(one, "web")
    assert held is not None
    waited = threading.Event()
    acquired = threading.Event()

    def second_host() -> None:
        with stack_lock(tmp_path / "b", "web", store=other, on_wait=waited.set):
            acquired.set()

    thread = threading.Thread(target=second_host)
    thread.start()
    assert waited.wait(10)
    assert not acquired.wait(0.6), "taken while still held"
    held.release()
    thread.join(10)
    assert acquired.is_set()


def test_a_holder_whose_session_dies_leaves_the_stack_free(
    hosts: tuple[Store, Store], tmp_path: Path
) -> None:
    one, other = hosts
    held = try_stack_lock(one, "web")
    assert held is not None
    assert try_stack_lock(other, "web") is None
    # A host lost: its session ends without an unlock (the server terminates it).
    pid = held.connection.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar_one()
    with other.engine.connect() as admin:
        admin.execute(sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    retaken = try_stack_lock(other, "web")
    assert retaken is not None, "the dead session's lock was not released"
    retaken.release()
    held.release()  # on a dead session: quietly nothing


def test_a_cancelled_wait_stops_waiting(hosts: tuple[Store, Store], tmp_path: Path) -> None:
    one, other = hosts
    held = try_stack_lock(one, "web")
    assert held is not None
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    waiting = stack_lock(tmp_path, "web", store=other, cancel=cancel)
    with pytest.raises(StackBusyError, match="stopped while waiting"), waiting:
        pass
    held.release()


def test_lock_keys_are_stable_and_distinct() -> None:
    assert lock_key("web") == lock_key("web")
    assert lock_key("web") != lock_key("db")
    assert -(2**63) <= lock_key("web") < 2**63


def _record_running(store: Store, operation_id: str, stack: str) -> None:
    with store.write() as session:
        start_operation(session, store.audit, OperationStart(
            operation_id, stack, "local-demo", stack, "drift", Trigger.SCHEDULE, "daemon",
            datetime.now(UTC),
        ))  # fmt: skip


def test_a_running_operation_whose_holder_is_gone_ends_interrupted_and_a_held_one_stays(
    hosts: tuple[Store, Store],
) -> None:
    """Host A records two checks `running`; it still holds the lock of one (a live run),
    and its session for the other is gone (killed). Host B's takeover ends only the lost
    one, and says so in the audit chain."""
    one, other = hosts
    _record_running(one, "op-live", "web")
    _record_running(one, "op-lost", "db")
    live = try_stack_lock(one, "web")
    assert live is not None
    try:
        assert recover_orphaned(other, "daemon") == ["op-lost"]
        assert recover_orphaned(other, "daemon") == []  # once
        with other.read() as session:
            status = {op.id: (op.status, op.error_kind) for op in session.exec(select(Operation))}
        assert status == {"op-live": ("running", None), "op-lost": ("interrupted", "interrupted")}
    finally:
        live.release()
    assert other.audit.verify(other).ok
    with other.read() as session:
        actions = [e.action for e in session.exec(select(AuditEvent).order_by(col(AuditEvent.seq)))]
    assert actions.count("operation.interrupted") == 1


def test_one_scheduler_at_a_time_and_the_next_takes_over_when_its_session_ends(
    hosts: tuple[Store, Store],
) -> None:
    one, other = hosts
    leader = try_scheduler_lock(one)
    assert leader is not None
    assert leader.alive()
    assert try_scheduler_lock(other) is None
    leader.release()
    successor = try_scheduler_lock(other)
    assert successor is not None
    successor.release()
