"""A damaged SQLite store: every command says so in one line naming the file (never the
driver's multi-line report with its SQL), and `audit verify` exits 4: a chain it could
not read is not a verified chain."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from driftwarden.config import load_config
from driftwarden.service.runtime import Runtime
from tests.cli import driftwarden
from tests.conftest import write_demo_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = write_demo_config(tmp_path)
    runtime = Runtime.open(load_config(path))  # creates the store, records the config
    runtime.store.close()
    return path


def database(config: Path) -> Path:
    return config.parent / "state" / "driftwarden.db"


def overwrite_page_of(db: Path, table: str) -> None:
    """Garbage over the first page of `table`, as a bad disk sector leaves it."""
    with sqlite3.connect(db) as connection:
        (root,) = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
        (size,) = connection.execute("PRAGMA page_size").fetchone()
    connection.close()
    with db.open("r+b") as handle:
        handle.seek((root - 1) * size)
        handle.write(b"\xa5" * size)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_intact_store_verifies(config: Path) -> None:
    ran = driftwarden(config, "audit", "verify")
    assert ran.code == 0, ran.stderr
    assert "events verified" in ran.stdout


def test_a_damaged_table_is_one_line_naming_the_file(config: Path) -> None:
    db = database(config)
    overwrite_page_of(db, "audit_events")
    verify = driftwarden(config, "audit", "verify")
    assert verify.code == 4
    assert one_line(verify.stderr) == (
        f"error: cannot read audit store {db}: database disk image is malformed — restore "
        f"{db} from a backup: SQLite finds it damaged"
    )
    log = driftwarden(config, "audit", "log")
    assert log.code == 1
    assert one_line(log.stderr).startswith(f"error: cannot read audit store {db}: ")
    for ran in (verify, log):
        assert "SELECT" not in ran.stderr
        assert "Background on this error" not in ran.stderr


def test_a_file_that_is_no_database_is_one_line_and_unverifiable(config: Path) -> None:
    db = database(config)
    with db.open("r+b") as handle:
        handle.write(b"not a database at all" * 10)
    verify = driftwarden(config, "audit", "verify", "--json")
    assert verify.code == 4
    assert verify.stdout == ""
    assert one_line(verify.stderr) == (
        f"error: cannot open audit store {db}: file is not a database — restore {db} from a "
        "backup: SQLite finds it damaged"
    )
    status = driftwarden(config, "status")
    assert status.code == 1
    assert one_line(status.stderr).startswith(f"error: cannot open audit store {db}: ")
