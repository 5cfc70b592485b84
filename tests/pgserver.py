"""A throwaway PostgreSQL server for the store tests and the store benchmark.

Debian's PostgreSQL (scripts/setup installs it), started in a temporary directory,
listening on 127.0.0.1 only, with password authentication, tuned for speed rather than
durability (fsync off). PostgreSQL refuses to run as root, so as root it runs as the
`postgres` system user (created if missing).

Plain Python, no pytest: the test fixtures turn `PostgresUnavailableError` into a failure,
the benchmark into an error message.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

PG_USER = "postgres"
SERVER_OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
)


class PostgresUnavailableError(RuntimeError):
    """The server binaries are missing or the server would not start (message says why)."""


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


def create_database(server: PostgresServer, name: str) -> str:
    """Create an empty database; returns its URL."""
    with server.admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return server.url(name)


def drop_database(server: PostgresServer, name: str) -> None:
    with server.admin() as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def pg_bin_dir() -> Path:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise PostgresUnavailableError(
        "PostgreSQL's initdb/pg_ctl not found (PATH, /usr/lib/postgresql/*/bin): "
        "run scripts/setup, or install Debian's `postgresql` package"
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


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a server in a fresh temporary directory; stop it and remove the directory
    on exit. Raises `PostgresUnavailableError` if it cannot be started."""
    bindir = pg_bin_dir()
    prefix, uid = _as_server_user()
    # Not under pytest's tmp dir: that is 0700 root-owned, out of the server user's reach.
    root = Path(tempfile.mkdtemp(prefix="driftwarden-pg-"))
    data, sockets, log = root / "data", root / "run", root / "server.log"
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}

    def run(*args: str) -> None:
        done = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, env=env, check=False
        )
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            raise PostgresUnavailableError(
                f"{' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}"
                f"{done.stderr}\n{server_log}"
            )

    started = False
    try:
        sockets.mkdir()
        password = secrets.token_hex(16)
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        if uid is not None:
            for path in (root, sockets, pwfile):
                os.chown(path, uid, -1)
        run(str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync")  # fmt: skip
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sockets} "
            + SERVER_OPTIONS
        )
        started = True  # a failed start may still leave a server behind: stop it anyway
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
            "-t", "60", "start")  # fmt: skip
        yield PostgresServer("127.0.0.1", port, PG_USER, password)
    finally:
        if started:
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                 "stop"],
                capture_output=True,
                env=env,
                check=False,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
