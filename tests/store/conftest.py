"""Store fixtures: every store test runs on SQLite and on a real PostgreSQL server.

The server is Debian's PostgreSQL (scripts/setup installs it), started once per session
in a temporary directory, listening on 127.0.0.1 only, with password authentication.
PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from driftwarden.store.db import Store, open_store

AUDIT_KEY = bytes(range(32))
PG_USER = "postgres"
_database_numbers = itertools.count(1)


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str

    def url(self, database: str) -> str:
        return (
            f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{database}"
        )

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        )


def _pg_bin_dir() -> Path:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    pytest.fail(
        "PostgreSQL's initdb/pg_ctl not found (PATH, /usr/lib/postgresql/*/bin): "
        "run scripts/setup, or install Debian's `postgresql` package",
        pytrace=False,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_server_user() -> tuple[list[str], int | None]:
    """The command prefix that runs as a non-root user, and that user's uid when root."""
    if os.geteuid() != 0:
        return [], None
    try:
        uid = pwd.getpwnam(PG_USER).pw_uid
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
        )  # fmt: skip
        uid = pwd.getpwnam(PG_USER).pw_uid
    if shutil.which("runuser"):
        return ["runuser", "-u", PG_USER, "--"], uid
    return ["setpriv", f"--reuid={uid}", f"--regid={pwd.getpwnam(PG_USER).pw_gid}",
            "--init-groups"], uid  # fmt: skip


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = _pg_bin_dir()
    prefix, uid = _as_server_user()
    # Not under pytest's tmp dir: that is 0700 root-owned, out of the server user's reach.
    root = Path(tempfile.mkdtemp(prefix="driftwarden-pg-"))
    data, sockets, log = root / "data", root / "run", root / "server.log"
    sockets.mkdir()
    password = secrets.token_hex(16)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if uid is not None:
        for path in (root, sockets, pwfile):
            os.chown(path, uid, -1)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}

    def run(*args: str) -> None:
        done = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, env=env, check=False
        )
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(
                f"{' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}"
                f"{done.stderr}\n{server_log}",
                pytrace=False,
            )

    run(str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={pwfile}",
        "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync")  # fmt: skip
    port = _free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sockets} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
        "-t", "60", "start")  # fmt: skip
    try:
        yield PostgresServer("127.0.0.1", port, PG_USER, password)
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            env=env,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for each test, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'driftwarden.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    with server.admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield server.url(name)
    with server.admin() as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def audit_key() -> bytes:
    return AUDIT_KEY


@pytest.fixture
def store(store_url: str, audit_key: bytes) -> Iterator[Store]:
    opened = open_store(store_url, audit_key)
    yield opened
    opened.close()
