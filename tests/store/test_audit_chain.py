"""The audit chain: append and verify, the key, export, and tampering by someone who has
the database (and drops the append-only triggers) but not the key."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import delete, insert, select, update

from driftwarden.domain.errors import DriftwardenError
from driftwarden.store.audit import (
    GENESIS_HASH,
    AuditChain,
    canonical_event,
    canonical_json,
    load_audit_key,
)
from driftwarden.store.db import Store
from driftwarden.store.export import export_events
from driftwarden.store.models import AuditEvent

EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
N = 12


def fill(store: Store, count: int = N) -> None:
    with store.write() as session:
        for n in range(1, count + 1):
            store.audit.append(
                session,
                actor="ana@host",
                action="operation.finished" if n % 2 else "finding.opened",
                stack="demo" if n % 3 else None,
                operation_id=f"op-{n}" if n % 2 else None,
                outcome="drifted" if n % 4 == 0 else None,
                details={"n": n, "path": f"tags.n{n}", "ünïcode": "✓"},
                time=T0 + timedelta(seconds=n, microseconds=n),
            )


def drop_triggers(store: Store) -> None:
    """What an attacker with database access does first."""
    with store.engine.begin() as connection:
        if store.dialect == "sqlite":
            connection.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            connection.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
        else:
            connection.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")


def rows(store: Store) -> dict[int, dict[str, Any]]:
    with store.engine.connect() as connection:
        return {row.seq: dict(row._mapping) for row in connection.execute(select(EVENTS))}


def renumber_from(connection: sqlalchemy.Connection, seq: int, delta: int) -> None:
    """Shift seqs >= seq by delta, in two steps so no intermediate seq collides."""
    connection.execute(update(EVENTS).where(EVENTS.c.seq >= seq).values(seq=-EVENTS.c.seq))
    connection.execute(update(EVENTS).where(EVENTS.c.seq < 0).values(seq=-EVENTS.c.seq + delta))


def test_append_and_verify(store: Store) -> None:
    empty = store.audit.verify(store)
    assert (empty.ok, empty.events_checked, empty.head_seq) == (True, 0, 0)
    assert empty.head_hash == GENESIS_HASH
    fill(store, 5)
    with store.write() as session:
        event = store.audit.append(session, actor="bob", action="config.loaded")
    assert event.seq == 6
    assert event.time.tzinfo is not None
    report = store.audit.verify(store)
    assert report.ok, report
    assert (report.events_checked, report.head_seq, report.head_hash) == (6, 6, event.hash)
    assert report.to_dict() == {
        "ok": True, "events_checked": 6, "head_seq": 6, "head_hash": event.hash,
        "first_bad_seq": None, "problem": None, "detail": None,
    }  # fmt: skip
    stored = rows(store)
    assert stored[1]["prev_hash"] == GENESIS_HASH
    assert all(stored[n]["prev_hash"] == stored[n - 1]["hash"] for n in range(2, 7))
    assert store.audit.head(store) == (6, event.hash)


def test_details_are_hashed_as_stored(store: Store) -> None:
    details: dict[Any, Any] = {1: 1.5, "nested": {"b": [1, None]}}  # an int key
    with store.write() as session:
        event = store.audit.append(session, actor="ana", action="x", details=details)
    assert event.details == {"1": 1.5, "nested": {"b": [1, None]}}
    assert store.audit.verify(store).ok


def test_threads_never_fork_the_chain(store: Store) -> None:
    def worker(n: int) -> None:
        for i in range(50):
            with store.write() as session:
                store.audit.append(session, actor=f"thread-{n}", action="t", details={"i": i})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    report = store.audit.verify(store)
    assert report.ok, report
    assert report.head_seq == report.events_checked == 200


def test_the_key_is_needed(store: Store) -> None:
    fill(store)
    report = AuditChain(b"\x01" * 32).verify(store)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 1, "modified")
    assert report.events_checked == 0


def test_modified_event(store: Store) -> None:
    fill(store)
    drop_triggers(store)
    with store.engine.begin() as connection:
        connection.execute(
            update(EVENTS).where(EVENTS.c.seq == 7).values(details={"n": 7, "path": "forged"})
        )
    report = store.audit.verify(store)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 7, "modified")
    assert report.events_checked == 6
    assert (report.head_seq, report.head_hash) == (6, rows(store)[6]["hash"])
    assert report.detail
    assert "\n" not in report.detail


def test_modified_hash_recomputed_without_the_key(store: Store) -> None:
    fill(store)
    drop_triggers(store)
    with store.engine.begin() as connection:
        forged = hashlib.sha256(b"forged").hexdigest()
        connection.execute(
            update(EVENTS).where(EVENTS.c.seq == 4).values(actor="mallory", hash=forged)
        )
    report = store.audit.verify(store)
    assert (report.first_bad_seq, report.problem) == (4, "modified")


def test_deleted_event(store: Store) -> None:
    fill(store)
    drop_triggers(store)
    with store.engine.begin() as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.seq == 5))
    report = store.audit.verify(store)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 5, "deleted")
    assert report.events_checked == 4


def test_deleted_event_and_renumbered(store: Store) -> None:
    fill(store)
    drop_triggers(store)
    with store.engine.begin() as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.seq == 5))
        renumber_from(connection, 6, -1)
    report = store.audit.verify(store)
    assert (report.first_bad_seq, report.problem) == (5, "deleted")


@pytest.mark.parametrize(("first", "second"), [(4, 9), (6, 7)])
def test_swapped_events(store: Store, first: int, second: int) -> None:
    fill(store)
    drop_triggers(store)
    before = rows(store)
    with store.engine.begin() as connection:
        for seq, other in ((first, second), (second, first)):
            content = {key: value for key, value in before[other].items() if key != "seq"}
            connection.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(**content))
    report = store.audit.verify(store)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, first, "reordered")
    assert report.events_checked == first - 1


@pytest.mark.parametrize("links_back", [True, False])
def test_inserted_event(store: Store, links_back: bool) -> None:
    fill(store)
    drop_triggers(store)
    before = rows(store)
    forged = {
        **before[8],
        "seq": 8,
        "actor": "mallory",
        "details": {"n": 0, "note": "nothing to see"},
        # A careful forger links to the real predecessor; a careless one does not.
        "prev_hash": before[7]["hash"] if links_back else hashlib.sha256(b"x").hexdigest(),
        "hash": hashlib.sha256(b"forged").hexdigest(),
    }
    with store.engine.begin() as connection:
        renumber_from(connection, 8, 1)
        connection.execute(insert(EVENTS).values(**forged))
    assert len(rows(store)) == N + 1
    report = store.audit.verify(store)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 8, "inserted")
    assert report.events_checked == 7


def test_truncated_tail(store: Store) -> None:
    fill(store)
    old_head = store.audit.verify(store)
    assert old_head.ok
    drop_triggers(store)
    with store.engine.begin() as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.seq > 9))
    # Without an anchor, a cut tail is indistinguishable from a shorter history...
    assert store.audit.verify(store).ok
    # ...with the head recorded earlier, it is not.
    report = store.audit.verify(store, expect_head=(old_head.head_seq, old_head.head_hash))
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 10, "truncated")
    assert (report.events_checked, report.head_seq) == (9, 9)


def test_expect_head(store: Store) -> None:
    fill(store)
    head = store.audit.verify(store)
    assert store.audit.verify(store, expect_head=(head.head_seq, head.head_hash)).ok
    middle = rows(store)[5]
    assert store.audit.verify(store, expect_head=(5, middle["hash"])).ok
    report = store.audit.verify(store, expect_head=(5, "f" * 64))
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 5, "modified")


def test_export_ocsf_and_native(store: Store) -> None:
    fill(store, 6)
    out = io.StringIO()
    assert export_events(store, out, "ocsf") == 6
    lines = out.getvalue().splitlines()
    assert len(lines) == 6
    records = [json.loads(line) for line in lines]
    stored = rows(store)
    first = records[0]
    assert (first["class_uid"], first["category_uid"], first["type_uid"]) == (6003, 6, 600399)
    assert first["time_dt"] == "2026-01-01T09:00:01.000001Z"
    assert first["time"] == int(datetime(2026, 1, 1, 9, 0, 1, tzinfo=UTC).timestamp() * 1000)
    assert first["actor"] == {"user": {"name": "ana@host"}}
    assert first["activity_name"] == "operation.finished"
    assert (first["status"], first["status_detail"]) == ("Success", None)
    assert {"type": "pulumi_stack", "name": "demo"} in first["resources"]
    assert {"type": "driftwarden_operation", "uid": "op-1"} in first["resources"]
    assert first["metadata"]["sequence"] == 1
    assert first["metadata"]["product"] == {"name": "driftwarden", "vendor_name": "driftwarden"}
    assert first["unmapped"] == {
        "seq": 1, "hash": stored[1]["hash"], "prev_hash": GENESIS_HASH,
        "details": {"n": 1, "path": "tags.n1", "ünïcode": "✓"},
    }  # fmt: skip
    assert records[3]["status_detail"] == "drifted"
    assert records[5]["resources"] == []  # seq 6: no stack, no operation
    assert [record["metadata"]["sequence"] for record in records] == [1, 2, 3, 4, 5, 6]
    assert out.getvalue().isascii()

    native = io.StringIO()
    assert export_events(store, native, "native") == 6
    event = json.loads(native.getvalue().splitlines()[0])
    assert event == {
        "seq": 1, "time": "2026-01-01T09:00:01.000001Z", "actor": "ana@host",
        "action": "operation.finished", "stack": "demo", "operation_id": "op-1", "outcome": None,
        "details": {"n": 1, "path": "tags.n1", "ünïcode": "✓"}, "prev_hash": GENESIS_HASH,
        "hash": stored[1]["hash"],
    }  # fmt: skip


# --- the key -------------------------------------------------------------------------


def test_key_generated_once_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    state = tmp_path / "state"
    key = load_audit_key(state)
    assert len(key) == 32
    path = state / "audit-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert bytes.fromhex(path.read_text().strip()) == key
    assert load_audit_key(state) == key
    assert sorted(os.listdir(state)) == ["audit-key"]  # no temporary files left


def test_key_races_resolve_to_one_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_audit_key(tmp_path), range(32)))
    assert len(keys) == 1


def test_key_from_systemd_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "audit-key").write_text("ab" * 32 + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert load_audit_key(tmp_path / "state") == bytes.fromhex("ab" * 32)
    assert not (tmp_path / "state").exists()


def test_short_key_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    (tmp_path / "audit-key").write_text("abcd\n")
    with pytest.raises(DriftwardenError, match="too short"):
        load_audit_key(tmp_path)


def test_canonical_form() -> None:
    details = {"b": [1, None, "ü"], "a": {"z": 1.5, "y": True}}
    document = {
        "seq": 3, "time": "2026-01-01T09:00:00.000001Z", "actor": "ana \"q\"", "action": "x",
        "stack": None, "operation_id": "op-1", "outcome": None, "details": details,
    }  # fmt: skip
    expected = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    built = canonical_event(
        3, "2026-01-01T09:00:00.000001Z", 'ana "q"', "x", None, "op-1", None,
        canonical_json(details),
    )  # fmt: skip
    assert built == expected


def test_reformatted_details_still_verify(store: Store) -> None:
    """Hashes cover the JSON value, not its stored spelling (e.g. after a move to jsonb)."""
    fill(store)
    drop_triggers(store)
    with store.engine.begin() as connection:
        if store.dialect == "sqlite":
            connection.exec_driver_sql("UPDATE audit_events SET details = json_insert(details)")
            connection.exec_driver_sql(
                "UPDATE audit_events SET details = replace(details, ',', ', ')"
            )
        else:
            connection.exec_driver_sql(
                "ALTER TABLE audit_events ALTER COLUMN details TYPE jsonb USING details::jsonb"
            )
    assert rows(store)[2]["details"] == {"n": 2, "path": "tags.n2", "ünïcode": "✓"}
    report = store.audit.verify(store)
    assert report.ok, report
    assert report.events_checked == N


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_values_of_the_wrong_type(store: Store) -> None:
    """SQLite keeps any type an intruder writes: verify reports it instead of crashing."""
    fill(store)
    drop_triggers(store)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE audit_events SET time = 123, details = 5 WHERE seq = 3")
        connection.exec_driver_sql("UPDATE audit_events SET actor = x'00ff' WHERE seq = 3")
    report = store.audit.verify(store)
    assert (report.first_bad_seq, report.problem) == (3, "modified")
