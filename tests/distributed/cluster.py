"""A distributed fleet on one machine, laid out as separate hosts would have it: each
worker is a `driftwarden worker` process with its own host name (a UTS namespace of its
own: `unshare --uts`), its own state directory and PULUMI_HOME, and a copy of the shared
secrets (the audit key); all share the PostgreSQL store and the Pulumi backend (a file
backend standing in for a bucket) with its passphrase."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from driftwarden.store.audit import load_audit_key
from driftwarden.store.db import Store, open_store
from tests.cli import DRIFTWARDEN
from tests.integration.conftest import Fleet
from tests.pgserver import PostgresServer

KEY_FILE = "audit-key"


@dataclass
class Host:
    name: str
    root: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.root / "driftwarden.toml"

    @property
    def log(self) -> Path:
        return self.root / "worker.log"

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a SIGKILL
        return records


@dataclass
class Cluster:
    fleet: Fleet
    server: PostgresServer
    database: str
    extra_config: str = ""
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url(self.database)

    def store(self) -> Store:
        return open_store(self.url, load_audit_key(self.fleet.state_dir, create=False),
                          migrate=False)  # fmt: skip

    def daemon_settings(self, state_dir: Path) -> str:
        return (
            f'[daemon]\nstate_dir = "{state_dir}"\nmode = "distributed"\n'
            f'database_url = "{self.url}"\n'
            f'backend_url = "{(self.fleet.state_dir / "backend").as_uri()}"\n'
            f'passphrase_file = "{self.fleet.state_dir / "pulumi-passphrase"}"\n'
            f"{self.extra_config}\n"
        )

    def write_fleet_config(self) -> None:
        """The fleet's own config (the CLI's: `trigger`, `status`), distributed like the rest."""
        self.fleet.config_path.write_text(
            self.daemon_settings(self.fleet.state_dir)
            + "\n".join(stack.toml() for stack in self.fleet.stacks)
        )

    def host(self, name: str) -> Host:
        """A host's directory and config (written anew: the fleet may have changed)."""
        host = self.hosts.get(name) or Host(name, self.fleet.root / "hosts" / name)
        self.hosts[name] = host
        state = host.root / "state"
        state.mkdir(parents=True, exist_ok=True)
        if not (state / KEY_FILE).exists():  # what an operator copies to each host
            shutil.copy2(self.fleet.state_dir / KEY_FILE, state / KEY_FILE)
        host.config_path.write_text(
            self.daemon_settings(state) + "\n".join(stack.toml() for stack in self.fleet.stacks)
        )
        return host

    def start(self, name: str, env: dict[str, str] | None = None) -> Host:
        host = self.host(name)
        with host.log.open("ab") as log:
            host.process = subprocess.Popen(
                ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', name,
                 str(DRIFTWARDEN), "--config", str(host.config_path), "worker", "--json-logs"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
            )  # fmt: skip
        return host

    def kill(self, name: str) -> None:
        """SIGKILL: the host lost, as far as the worker can tell."""
        process = self.hosts[name].process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self, name: str, timeout: float = 120) -> int:
        """SIGTERM (a drain); the exit code."""
        process = self.hosts[name].process
        assert process is not None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        return process.wait(timeout=timeout)

    def stop_all(self) -> None:
        for host in self.hosts.values():
            if host.process is not None and host.process.poll() is None:
                host.process.send_signal(signal.SIGTERM)
        for host in self.hosts.values():
            if host.process is not None:
                try:
                    host.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    host.process.kill()
                    host.process.wait(timeout=30)

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        conninfo = self.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo) as connection:
            return list(connection.execute(sql, params).fetchall())

    def operations(self) -> list[Operation]:
        rows = self.query(
            "SELECT id, stack, kind, status, host, started_at, finished_at, trigger, error_kind"
            " FROM operations ORDER BY started_at"
        )
        return [Operation(*row) for row in rows]


@dataclass(frozen=True)
class Operation:
    id: str
    stack: str
    kind: str
    status: str
    host: str
    started_at: datetime
    finished_at: datetime | None
    trigger: str
    error_kind: str | None


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def overlapping(operations: list[Operation]) -> Iterator[tuple[Operation, Operation]]:
    """Pairs of one stack's operations whose run intervals overlap."""
    by_stack: dict[str, list[Operation]] = {}
    for op in operations:
        by_stack.setdefault(op.stack, []).append(op)
    for ops in by_stack.values():
        ops.sort(key=lambda op: op.started_at)
        for before, after in itertools.pairwise(ops):
            if before.finished_at is None or before.finished_at > after.started_at:
                yield before, after
