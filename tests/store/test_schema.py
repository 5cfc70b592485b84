"""Migrations from an empty database, the schema against models.py, append-only triggers,
and clear errors for stores that cannot be opened."""

from __future__ import annotations

import socket
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from driftwarden.domain.errors import DriftwardenError
from driftwarden.store.audit import CHAIN_LOCK
from driftwarden.store.db import (
    Store,
    default_store_url,
    head_revision,
    open_store,
    redact_db_url,
    upgrade,
)
from driftwarden.store.migrations import alembic_config
from driftwarden.store.models import AuditEvent
from tests.store.conftest import AUDIT_KEY

TABLES = {"operations", "resource_changes", "property_changes", "findings", "audit_events"}


def alembic_head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def test_the_head_read_without_alembic_is_alembics() -> None:
    """Starts answer "at head?" from the migration files' names (no Alembic import):
    each migration's revision is its file's four digits, and the newest is the head."""
    scripts = ScriptDirectory.from_config(alembic_config())
    for revision in scripts.walk_revisions():
        assert revision.path is not None
        assert Path(revision.path).name[:4] == revision.revision
    assert head_revision() == alembic_head()


def test_migrates_from_empty(store_url: str) -> None:
    assert upgrade(store_url) == alembic_head()
    engine = sqlalchemy.create_engine(store_url)
    try:
        names = set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert names >= TABLES | {"alembic_version"}
    assert upgrade(store_url) == alembic_head()  # idempotent


def test_schema_matches_models(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
        indexes = sqlalchemy.inspect(connection).get_indexes("findings")
    (open_index,) = [index for index in indexes if index["name"] == "ux_findings_open"]
    assert open_index["unique"]
    assert open_index["column_names"] == ["stack", "check", "urn", "path"]
    where = open_index.get("dialect_options", {}).get(f"{store.dialect}_where")
    assert "resolved_at IS NULL" in str(where)


def test_store_reports_dialect(store: Store, store_url: str) -> None:
    assert store.dialect == ("sqlite" if store_url.startswith("sqlite") else "postgresql")
    assert store.engine.dialect.name == store.dialect


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"],
)
def test_audit_events_are_append_only(store: Store, statement: str) -> None:
    with store.write() as session:
        store.audit.append(session, actor="ana", action="test.event", details={"n": 1})
    connection = store.engine.connect()
    with connection, pytest.raises(IntegrityError, match="audit_events is append-only"):
        connection.exec_driver_sql(statement)
    assert store.audit.verify(store).ok


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_truncate_refused_on_postgresql(store: Store) -> None:
    # (SQLite has no TRUNCATE: its `DELETE FROM` fires the DELETE trigger.)
    with store.write() as session:
        store.audit.append(session, actor="ana", action="test.event")
    connection = store.engine.connect()
    with connection, pytest.raises(IntegrityError, match="audit_events is append-only"):
        connection.exec_driver_sql("TRUNCATE audit_events")
    assert store.audit.verify(store).events_checked == 1


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_sqlite_write_locks_at_begin(store: Store, store_url: str) -> None:
    """BEGIN IMMEDIATE: the write lock is held before the chain head is read."""
    other = sqlite3.connect(store_url.removeprefix("sqlite:///"), timeout=0)
    other.isolation_level = None
    try:
        with store.write(), pytest.raises(sqlite3.OperationalError, match="is locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after the commit
        other.execute("ROLLBACK")
    finally:
        other.close()


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_postgresql_append_holds_the_chain_lock(store: Store) -> None:
    lock = sqlalchemy.text("SELECT pg_try_advisory_xact_lock(:key)")
    with store.write() as session, store.engine.connect() as other:
        store.audit.append(session, actor="ana", action="test.event")
        assert other.execute(lock, {"key": CHAIN_LOCK}).scalar() is False
    with store.engine.connect() as other:
        assert other.execute(lock, {"key": CHAIN_LOCK}).scalar() is True


def test_write_rolls_back_on_error(store: Store) -> None:
    def failing_write() -> None:
        with store.write() as session:
            store.audit.append(session, actor="ana", action="test.event")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_write()
    assert store.audit.verify(store).events_checked == 0


def test_append_needs_a_write_session(store: Store) -> None:
    with store.read() as session, pytest.raises(RuntimeError, match=r"Store\.write"):
        store.audit.append(session, actor="ana", action="test.event")


def test_timestamps_are_utc(store: Store) -> None:
    when = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    with store.write() as session:
        event = store.audit.append(session, actor="ana", action="test.event", time=when)
    with store.read() as session:
        loaded = session.get(AuditEvent, event.seq)
    assert loaded is not None
    assert loaded.time == when
    assert loaded.time.tzinfo is not None


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    store = open_store(default_store_url(tmp_path), AUDIT_KEY)
    try:
        assert store.url == f"sqlite:///{tmp_path / 'driftwarden.db'}"
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        store.close()


def test_redact_db_url() -> None:
    assert redact_db_url("postgresql://dw:s3cret@db:5432/dw") == "postgresql://dw:***@db:5432/dw"
    assert "s3cret" not in redact_db_url("postgresql://dw@db/dw?password=s3cret")
    assert "s3cret" not in redact_db_url("::dw:s3cret@nonsense")
    assert redact_db_url("sqlite:////var/lib/dw/driftwarden.db").endswith("driftwarden.db")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a database URL"),
        ("mysql://u:pw@localhost/db", "'mysql' databases are not supported"),
        ("postgresql+asyncpg://u:pw@localhost/db", "driver 'asyncpg' is not supported"),
        ("sqlite:////nonexistent/dir/driftwarden.db", "directory /nonexistent/dir does not"),
    ],
)
def test_open_errors_are_one_line(url: str, message: str) -> None:
    with pytest.raises(DriftwardenError, match=message) as caught:
        open_store(url, AUDIT_KEY)
    assert "\n" not in str(caught.value)
    assert ":pw@" not in str(caught.value)


def test_unreachable_server(tmp_path: Path) -> None:
    url = f"postgresql://dw:s3cret@127.0.0.1:{_closed_port()}/dw"
    with pytest.raises(DriftwardenError, match="cannot open audit store") as caught:
        open_store(url, AUDIT_KEY)
    text = str(caught.value)
    assert "s3cret" not in text
    assert "postgresql+psycopg://dw:***@127.0.0.1" in text
    assert "\n" not in text


def test_unusable_sqlite_file(tmp_path: Path) -> None:
    (tmp_path / "driftwarden.db").mkdir()  # a directory where the file should be
    with pytest.raises(DriftwardenError, match="cannot open audit store") as caught:
        open_store(default_store_url(tmp_path), AUDIT_KEY)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_postgresql_url_is_normalized(store_url: str) -> None:
    plain = store_url.replace("postgresql+psycopg://", "postgresql://")
    store = open_store(plain, AUDIT_KEY)
    try:
        assert store.url.startswith("postgresql+psycopg://")
        assert store.dialect == "postgresql"
    finally:
        store.close()
