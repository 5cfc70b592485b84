"""Store fixtures: every store test runs on SQLite and on a real PostgreSQL server.

The server (tests/pgserver.py) is started once per session in a temporary directory; each
test gets a fresh database on it. Missing PostgreSQL binaries fail the tests, never skip
them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwarden.store.db import Store, open_store
from tests.pgserver import (
    PostgresServer,
    PostgresUnavailableError,
    create_database,
    drop_database,
    running_postgres,
)

AUDIT_KEY = bytes(range(32))
_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_postgres())
        except PostgresUnavailableError as exc:  # fail, never skip: CI must notice
            raise pytest.fail.Exception(str(exc), pytrace=False) from None
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for each test, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'driftwarden.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    yield create_database(server, name)
    drop_database(server, name)


@pytest.fixture
def audit_key() -> bytes:
    return AUDIT_KEY


@pytest.fixture
def store(store_url: str, audit_key: bytes) -> Iterator[Store]:
    opened = open_store(store_url, audit_key)
    yield opened
    opened.close()
