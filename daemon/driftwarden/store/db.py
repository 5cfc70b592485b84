"""Opening the audit store: engine, per-dialect connection setup, sessions, migrations.

SQLite (the default) runs in WAL mode so readers never block the writer, and every write
transaction starts with `BEGIN IMMEDIATE`: the audit chain reads its head before it
appends, and only a write lock taken *before* that read serializes appenders across
processes. pysqlite's own transaction handling is switched off so that we, not the
driver, decide when and how a transaction begins (SQLAlchemy's documented recipe).
PostgreSQL goes through psycopg 3; there the chain serializes with an advisory lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, Pool
from sqlmodel import Session

from driftwarden.domain.errors import DriftwardenError, StoreError
from driftwarden.store.audit import WRITE_SESSION, AuditChain, canonical_json

Dialect = Literal["sqlite", "postgresql"]

DB_FILENAME = "driftwarden.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
_BEGIN_OPTION = "driftwarden_begin"
# Serializes concurrent `upgrade`s of one PostgreSQL database (any constant will do;
# it only has to differ from the audit chain's lock).
_MIGRATION_LOCK = 0x6472_6966_7477_6D01
URL_HINT = "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


_MIGRATIONS = Path(__file__).resolve().parent / "migrations" / "versions"


def _json_serializer(value: Any) -> str:
    # The chain's canonical form: `verify` can then hash the stored text as is (it falls
    # back to re-serializing when the text differs).
    try:
        return canonical_json(value)
    except (TypeError, ValueError):  # mixed key types, NaN: stored anyway, re-serialized
        return json.dumps(value, separators=(",", ":"))


def default_store_url(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / DB_FILENAME}"


def redact_db_url(url: str | URL) -> str:
    """The URL without its password (also a `password=` query parameter), for messages."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        # Not parseable: hide whatever sits between "user:" and "@" the crude way.
        return re.sub(r":[^:@/]*@", ":***@", str(url))
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": "***"})
    return parsed.render_as_string(hide_password=True)


@dataclass
class Store:
    engine: sqlalchemy.Engine
    url: str = field(repr=False)  # may hold a password: show redact_db_url(url) instead
    dialect: Dialect
    audit: AuditChain = field(repr=False)
    _unpooled: sqlalchemy.Engine | None = field(default=None, repr=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on error.

        The transaction (and on SQLite the database write lock) starts right here, not
        at the first statement, so everything read inside the block is current.
        """
        with (
            self._failing_clearly("cannot write"),
            Session(self.engine, expire_on_commit=False) as session,
        ):
            session.info[WRITE_SESSION] = True
            with session.begin():
                session.connection(execution_options={_BEGIN_OPTION: "IMMEDIATE"})
                yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction (a consistent snapshot on SQLite WAL); never committed."""
        with (
            self._failing_clearly("cannot read"),
            Session(self.engine, expire_on_commit=False) as session,
        ):
            yield session

    @contextmanager
    def _failing_clearly(self, what: str) -> Iterator[None]:
        """A database error (a damaged file, a server gone) as one line naming the store,
        not the driver's multi-line report with its SQL."""
        try:
            yield
        except DBAPIError as exc:
            raise _store_error(self.engine.url, exc, what) from exc

    def answers(self) -> str | None:
        """None when the database answers a query, else why not (one line, no URL)."""
        try:
            with self.engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
        except DBAPIError as exc:
            reason = (str(exc.orig).splitlines() or [""])[0]
            return f"{type(exc.orig).__name__}: {reason}"
        return None

    def unpooled(self) -> sqlalchemy.Engine:
        """An engine whose connections are opened and closed one by one, for sessions held
        as long as an engine run (stack locks): they must not drain the shared pool. TCP
        keepalives keep such an idle session from being dropped mid-run."""
        with _UNPOOLED_LOCK:
            if self._unpooled is None:
                self._unpooled = _postgresql_engine(
                    self.engine.url, poolclass=NullPool,
                    extra_connect_args={"keepalives": 1, "keepalives_idle": 60,
                                        "keepalives_interval": 10, "keepalives_count": 6},
                )  # fmt: skip
            return self._unpooled

    def libpq_url(self) -> str:
        """The PostgreSQL store's URL as libpq (psycopg, procrastinate) reads it."""
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def close(self) -> None:
        self.engine.dispose()
        if self._unpooled is not None:
            self._unpooled.dispose()


def open_store(url: str, audit_key: bytes, *, migrate: bool = True) -> Store:
    """Connect (and by default migrate to the newest schema); errors are one clear line."""
    return _open(url, audit_key, read_only=False, ready=upgrade if migrate else _answers)


def open_store_read_only(url: str, audit_key: bytes | None) -> Store:
    """Connect for reading only: nothing is created, migrated or written, and the
    database itself refuses writes (SQLite `mode=ro`, a read-only PostgreSQL session).
    Works for a user who may only read the database."""
    return _open(url, audit_key, read_only=True, ready=_schema_is_current)


def _open(
    url: str, audit_key: bytes | None, *, read_only: bool, ready: Callable[[Store], object]
) -> Store:
    dialect, engine = _create_engine(url, read_only=read_only)
    store = Store(engine=engine, url=engine.url.render_as_string(hide_password=False),
                  dialect=dialect, audit=AuditChain(audit_key))  # fmt: skip
    try:
        ready(store)
    except BaseException:
        engine.dispose()
        raise
    return store


def _answers(store: Store) -> None:
    try:
        with store.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except DBAPIError as exc:
        raise _connect_error(store.engine.url, exc) from None


def _schema_is_current(store: Store) -> None:
    try:
        current, head = _stored_revision(store.engine), head_revision()
    except DBAPIError as exc:
        raise _connect_error(store.engine.url, exc) from None
    if current != head:
        raise DriftwardenError(
            f"audit store {redact_db_url(store.engine.url)} is at schema revision "
            f"{current or 'none'}, this driftwarden reads {head}",
            hint="let a writer migrate it: `driftwarden db upgrade`, or start the daemon",
        )


def probe_store(url: str, *, timeout: float) -> str | None:
    """Why the store cannot be reached now (one line, no password), or None. Creates
    nothing: a SQLite file that does not exist yet is created by the first writer."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"{redact_db_url(url)} is not a database URL"
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or not Path(parsed.database).is_file():
            return None
        url = str(parsed)
    elif "connect_timeout" not in parsed.query:
        url = parsed.update_query_dict(
            {"connect_timeout": str(max(1, round(timeout)))}
        ).render_as_string(hide_password=False)
    try:
        _, engine = _create_engine(url, read_only=True)
    except DriftwardenError as exc:
        return str(exc)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except DBAPIError as exc:
        return str(_connect_error(engine.url, exc))
    finally:
        engine.dispose()
    return None


def upgrade(store_or_url: Store | str) -> str:
    """Migrate the schema to the newest revision; returns that revision."""
    if isinstance(store_or_url, str):
        _, engine = _create_engine(store_or_url)
        try:
            return _upgrade(engine)
        finally:
            engine.dispose()
    return _upgrade(store_or_url.engine)


def head_revision() -> str:
    """The newest schema revision this driftwarden knows: its migrations are named
    `NNNN_what.py` with revision "NNNN" (tests/store/test_schema.py holds them to it)."""
    return max(path.name[:4] for path in _MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))


def _stored_revision(engine: sqlalchemy.Engine) -> str | None:
    """The store's schema revision, read without Alembic (None: no schema yet)."""
    with engine.connect() as connection:
        has_schema = sqlalchemy.inspect(connection).has_table("alembic_version")
        if not has_schema:
            return None
        revision = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version"))
        return revision.scalar()


def _upgrade(engine: sqlalchemy.Engine) -> str:
    try:
        # Most starts find the schema at head: answered without importing Alembic (a
        # quarter of a second), before any lock is taken.
        if (current := _stored_revision(engine)) == head_revision():
            return current
    except DBAPIError as exc:
        raise _connect_error(engine.url, exc) from None
    # Imported here: Alembic is only needed when migrating.
    from driftwarden.store.migrations import run_upgrade

    try:
        # One transaction for the whole upgrade, locked first, so that processes starting
        # together migrate once: the others wait, then find the schema at head.
        connection = engine.connect().execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        with connection, connection.begin():
            if engine.dialect.name == "postgresql":
                connection.execute(
                    sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": _MIGRATION_LOCK},
                )
            return run_upgrade(connection)
    except DBAPIError as exc:
        raise _connect_error(engine.url, exc) from None


def _create_engine(url: str, *, read_only: bool = False) -> tuple[Dialect, sqlalchemy.Engine]:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DriftwardenError(
            f"audit store URL {redact_db_url(url)!r} is not a database URL", hint=URL_HINT
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return "sqlite", _sqlite_engine(parsed, read_only=read_only)
    if backend in ("postgresql", "postgres"):
        if parsed.drivername not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise DriftwardenError(
                f"audit store URL {redact_db_url(parsed)}: driver "
                f"{parsed.get_driver_name()!r} is not supported",
                hint="use postgresql:// or postgresql+psycopg:// (psycopg 3)",
            )
        pg_url = parsed.set(drivername="postgresql+psycopg")
        return "postgresql", _postgresql_engine(pg_url, read_only=read_only)
    raise DriftwardenError(
        f"audit store URL {redact_db_url(parsed)}: {backend!r} databases are not supported",
        hint=URL_HINT,
    )


def _sqlite_engine(url: URL, *, read_only: bool = False) -> sqlalchemy.Engine:
    connect_url = url
    if url.database and url.database != ":memory:":
        path = Path(url.database)
        if not path.parent.is_dir():
            raise DriftwardenError(
                f"cannot open audit store {redact_db_url(url)}: directory {path.parent} "
                "does not exist",
                hint="create it, or point [daemon] database_url at a writable directory",
            )
        if read_only:
            _require_recorded(path)
            # SQLite itself refuses every write on this connection.
            connect_url = url.set(database=f"file:{path.absolute()}").update_query_dict(
                {"mode": "ro", "uri": "true"}
            )
        elif not path.exists():
            # Private like the passphrase: SQLite gives its -wal and -shm the same mode.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    elif read_only:
        raise DriftwardenError("an in-memory audit store cannot be read by another process")
    try:
        engine = sqlalchemy.create_engine(
            connect_url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            json_serializer=_json_serializer,
        )
    except (ArgumentError, NoSuchModuleError, TypeError) as exc:
        raise DriftwardenError(
            f"cannot open audit store {redact_db_url(url)}: {exc}", hint=URL_HINT
        ) from None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The driver must not BEGIN on its own (it would be a DEFERRED begin, too late
        # for the chain and never before SELECTs): `_on_begin` does it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            # A reader leaves the journal mode alone (setting it is a write).
            journal = "PRAGMA journal_mode" if read_only else "PRAGMA journal_mode = WAL"
            mode = cursor.execute(journal).fetchone()
        finally:
            cursor.close()
        if not read_only and mode and str(mode[0]).lower() not in ("wal", "memory"):
            raise DriftwardenError(f"audit store {redact_db_url(url)}: WAL mode unavailable")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sqlalchemy.Connection) -> None:
        immediate = connection.get_execution_options().get(_BEGIN_OPTION) == "IMMEDIATE"
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _require_recorded(path: Path) -> None:
    # Not a StoreError: nothing recorded yet is a setup to finish, not a store to mend.
    if not path.is_file():
        raise DriftwardenError(
            f"no audit store at {path}: nothing has been recorded yet",
            hint="run `driftwarden scan` or start the daemon first",
        )


def require_recorded(url: str) -> None:
    """A reader's first question: has anything been recorded at `url`? (A SQLite file
    that does not exist yet says no, before the audit key is even looked for.)"""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _require_recorded(Path(parsed.database))


_UNPOOLED_LOCK = threading.Lock()


def _postgresql_engine(
    url: URL,
    *,
    read_only: bool = False,
    poolclass: type[Pool] | None = None,
    extra_connect_args: dict[str, Any] | None = None,
) -> sqlalchemy.Engine:
    connect_args: dict[str, Any] = dict(extra_connect_args or {})
    if "connect_timeout" not in url.query and "PGCONNECT_TIMEOUT" not in os.environ:
        # libpq waits forever for an unreachable host by default.
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    if read_only:  # the server refuses every write in this session
        connect_args["options"] = "-c default_transaction_read_only=on"
    try:
        options: dict[str, Any] = {"poolclass": poolclass} if poolclass else {"pool_pre_ping": True}
        return sqlalchemy.create_engine(
            url, connect_args=connect_args, json_serializer=_json_serializer, **options
        )
    except (ArgumentError, NoSuchModuleError) as exc:
        raise DriftwardenError(
            f"cannot open audit store {redact_db_url(url)}: {exc}", hint=URL_HINT
        ) from None


def _connect_error(url: URL, exc: DBAPIError) -> StoreError:
    return _store_error(url, exc, "cannot open")


def _store_error(url: URL, exc: DBAPIError, what: str) -> StoreError:
    reason = (str(exc.orig if exc.orig else exc).strip().splitlines() or ["no reason"])[0]
    if url.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        hint = (
            f"restore {path} from a backup: SQLite finds it damaged"
            if "malformed" in reason or "not a database" in reason
            else f"check that {path} is a SQLite database in a directory writable by "
            f"uid {os.getuid()}"
        )
        return StoreError(f"{what} audit store {path}: {reason}", hint=hint)
    hint = "check that the server runs and accepts this user, and [daemon] database_url"
    return StoreError(f"{what} audit store {redact_db_url(url)}: {reason}", hint=hint)


def sqlite_path(url: URL) -> str:
    """The file of a SQLite URL, also of the read-only `file:PATH?mode=ro` form."""
    return (url.database or "").removeprefix("file:")
