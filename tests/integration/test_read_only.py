"""Read commands change nothing: not after a config edit, not for an auditor whose
database role may only SELECT. And a listing cut short by its reader ends quietly."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from driftwarden.config import load_config
from driftwarden.service.runtime import Runtime
from tests.cli import DRIFTWARDEN
from tests.integration.conftest import DEMO_PROJECT, DemoStack, Fleet
from tests.pgserver import (
    PostgresServer,
    PostgresUnavailableError,
    create_database,
    drop_database,
    running_postgres,
)

pytestmark = pytest.mark.engine

READS = (
    ("status",), ("status", "--json"), ("history",), ("history", "--json"),
    ("drift", "show", "demo"), ("drift", "show", "demo", "--json"), ("audit", "verify"),
    ("audit", "export"), ("audit", "log"), ("notify", "list"), ("config", "check"),
)  # fmt: skip


def edit_config(fleet: Fleet) -> None:
    """A config change: writers record it (`config.loaded`), readers must not."""
    with fleet.config_path.open("a") as config:
        config.write("\n# edited by an operator\n")


def run_reads(fleet: Fleet) -> None:
    for args in READS:
        done = fleet.cli(*args)
        assert done.code == 0, f"{' '.join(args)}: exit {done.code}\n{done.stderr}"
        assert done.stderr == "", f"{' '.join(args)}: {done.stderr}"


def sqlite_rows(db: Path) -> list[str]:
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
        return list(conn.iterdump())


def drifted(fleet: Fleet, demo: DemoStack) -> None:
    (demo.files / "motd.txt").write_text("HACKED\n")
    assert fleet.scan("--json").code == 3  # drift found, recorded by a writer


def test_read_commands_change_no_row_after_a_config_edit(fleet: Fleet, demo: DemoStack) -> None:
    drifted(fleet, demo)
    db = fleet.state_dir / "driftwarden.db"
    edit_config(fleet)
    before = sqlite_rows(db)
    run_reads(fleet)
    assert sqlite_rows(db) == before
    # The writer that comes next records the edit.
    assert fleet.scan("--json").code == 3
    assert len(sqlite_rows(db)) > len(before)


def test_before_anything_was_recorded_readers_say_so_and_create_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "driftwarden.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{state}"\n[[stacks]]\nname = "demo"\n'
        f'project_dir = "{DEMO_PROJECT}"\nstack = "dev"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "DRIFTWARDEN_STATE_DIR"}
    for args in (("status",), ("history",), ("audit", "verify")):
        done = subprocess.run(
            [str(DRIFTWARDEN), "--config", str(config), *args],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert "nothing has been recorded yet" in done.stderr
        assert "run `driftwarden scan` or start the daemon first" in done.stderr
    assert not state.exists(), "a reader created the state directory"


def test_the_database_file_is_private(fleet: Fleet, demo: DemoStack) -> None:
    assert fleet.scan().code == 0
    db = fleet.state_dir / "driftwarden.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[tuple[PostgresServer, str]]:
    try:
        with running_postgres() as server:
            name = "readonly_test"
            yield server, create_database(server, name)
            drop_database(server, name)
    except PostgresUnavailableError as exc:  # fail, never skip: CI must notice
        pytest.fail(str(exc), pytrace=False)


def pg_rows(url: str) -> dict[str, str]:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )]  # fmt: skip
        digest = {}
        for table in sorted(tables):
            row = conn.execute(
                sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text),"
                        " '')) FROM {} t").format(sql.Identifier(table))
            ).fetchone()  # fmt: skip
            digest[table] = str(row)
        return digest


def test_an_auditor_who_may_only_select_can_read_everything(
    fleet: Fleet, demo: DemoStack, postgres: tuple[PostgresServer, str]
) -> None:
    server, owner_url = postgres
    fleet.write_config(f'database_url = "{owner_url}"')
    drifted(fleet, demo)
    with psycopg.connect(owner_url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:  # fmt: skip
        conn.execute("CREATE ROLE auditor LOGIN PASSWORD 'auditor-pw'")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO auditor")
    auditor_url = owner_url.replace(f"{server.user}:{server.password}@", "auditor:auditor-pw@")
    fleet.write_config(f'database_url = "{auditor_url}"')  # also a config change
    before = pg_rows(owner_url)
    run_reads(fleet)
    assert pg_rows(owner_url) == before
    # The auditor cannot write, and a writer says so in one line.
    scan = fleet.scan()
    assert scan.code != 0
    assert "permission denied" in scan.stderr, scan.stderr


def test_a_listing_cut_short_by_its_reader_ends_quietly(fleet: Fleet, demo: DemoStack) -> None:
    assert fleet.scan().code == 0
    runtime = Runtime.open(load_config(fleet.config_path))
    with runtime.store.write() as session:  # more than a pipe holds (64 KiB)
        for i in range(1500):
            runtime.store.audit.append(
                session, actor="test", action="test.filler", details={"i": i, "pad": "x" * 80}
            )
    runtime.store.close()
    env = {k: v for k, v in os.environ.items() if k != "DRIFTWARDEN_STATE_DIR"}
    # A streaming listing: one write per event. (A listing written in one piece may fit
    # the pipe whole, and then there is no broken pipe to handle.)
    for listing in ("audit export",):
        done = subprocess.run(
            ["bash", "-c", f'"$0" --config "$1" {listing} | head -c 1 >/dev/null;'
             ' echo "${PIPESTATUS[0]}"', str(DRIFTWARDEN), str(fleet.config_path)],
            capture_output=True, text=True, env=env, timeout=120, check=True,
        )  # fmt: skip
        assert done.stderr == "", f"{listing}: {done.stderr}"
        assert done.stdout.strip() == "141", f"{listing}: exit {done.stdout}"
