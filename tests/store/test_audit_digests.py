"""Signed digests: what an auditor with the public key alone can check — on SQLite and on
a real PostgreSQL server, against a store tampered with by someone who has the database
(and drops the append-only triggers) but not the signing key."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, update

from driftwarden.domain.errors import DriftwardenError
from driftwarden.store.audit import canonical_json
from driftwarden.store.db import Store
from driftwarden.store.digest_check import DigestReport, read_native_export, verify_digests
from driftwarden.store.digests import Sealed, append_digest, store_events
from driftwarden.store.export import export_events
from driftwarden.system.signing import (
    PublicKey,
    SigningKey,
    generate_key_pair,
    load_public_key,
    load_signing_key,
)
from tests.store.test_audit_chain import EVENTS, drop_triggers, fill, renumber_from, rows


@pytest.fixture
def keys(tmp_path: Path) -> tuple[SigningKey, PublicKey]:
    key = generate_key_pair(tmp_path / "audit-signing-key")
    return key, load_public_key(tmp_path / "audit-signing-key.pub")


def sign(store: Store, key: SigningKey, previous: SigningKey | None = None) -> Sealed | None:
    with store.write() as session:
        return append_digest(session, store.audit, key, previous_key=previous)


def signed_store(store: Store, key: SigningKey) -> list[Sealed]:
    """Events 1..12, digest (13), events 14..25, digest (26), events 27..29 (unsigned)."""
    sealed = []
    for _ in range(2):
        fill(store, 12)
        done = sign(store, key)
        assert done is not None
        sealed.append(done)
    fill(store, 3)
    return sealed


def check(
    store: Store, *keys: PublicKey, expect_head: tuple[int, str] | None = None
) -> DigestReport:
    return verify_digests(store_events(store), keys, expect_head=expect_head)


def test_digests_sign_and_verify_with_the_public_key_alone(
    store: Store, keys: tuple[SigningKey, PublicKey]
) -> None:
    key, public = keys
    first, second = signed_store(store, key)
    assert (first.seq, second.seq) == (13, 26)
    assert first.payload["first_seq"] == 1
    assert first.payload["last_seq"] == 12
    assert (second.payload["first_seq"], second.payload["last_seq"]) == (13, 25)
    assert second.payload["number"] == 2
    assert second.payload["key"] == key.fingerprint
    report = check(store, public)
    assert report.ok, report
    assert (report.digests, report.signed_through, report.events) == (2, 25, 29)
    assert report.keys == [key.fingerprint]
    assert report.unproven[0] == "events 26..29: after the last digest, not signed yet"
    # Nothing new but the digest itself: no digest of a digest.
    assert sign(store, key) is not None  # three events since
    assert sign(store, key) is None


def test_a_native_export_verifies_without_the_database(
    store: Store, keys: tuple[SigningKey, PublicKey]
) -> None:
    key, public = keys
    signed_store(store, key)
    out = io.StringIO()
    export_events(store, out, "native")
    report = verify_digests(read_native_export(io.StringIO(out.getvalue())), [public])
    assert report.ok
    assert report.digests == 2
    tampered = out.getvalue().replace('"n":5,', '"n":50,')
    assert tampered != out.getvalue()
    broken = verify_digests(read_native_export(io.StringIO(tampered)), [public])
    assert (broken.ok, broken.problem, broken.first_bad_seq) == (False, "modified", 1)


def test_a_broken_chain_is_never_signed(store: Store, keys: tuple[SigningKey, PublicKey]) -> None:
    fill(store, 5)
    drop_triggers(store)
    with store.engine.begin() as connection:
        connection.execute(update(EVENTS).where(EVENTS.c.seq == 3).values(actor="mallory"))
    with pytest.raises(DriftwardenError, match="event 3 does not match its HMAC"):
        sign(store, keys[0])


# --- the tamper matrix: each kind, seen with the public key alone ---------------------


def tamper_edit(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.execute(update(EVENTS).where(EVENTS.c.seq == 7).values(actor="mallory"))


def tamper_delete(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.seq == 7))


def tamper_delete_renumber(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.seq == 7))
        renumber_from(connection, 8, -1)


def tamper_insert(store: Store) -> None:
    before = rows(store)
    forged = {**before[7], "seq": 7, "actor": "mallory", "prev_hash": before[6]["hash"],
              "hash": "f" * 64}  # fmt: skip
    with store.engine.begin() as connection:
        renumber_from(connection, 7, 1)
        connection.execute(insert(EVENTS).values(**forged))


def tamper_reorder(store: Store) -> None:
    before = rows(store)
    with store.engine.begin() as connection:
        for seq, other in ((4, 9), (9, 4)):
            content = {k: v for k, v in before[other].items() if k != "seq"}
            connection.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(**content))


def tamper_truncate(store: Store) -> None:
    with store.engine.begin() as connection:  # the last digest and all after it
        connection.execute(delete(EVENTS).where(EVENTS.c.seq >= 26))


def tamper_replace_digest(store: Store) -> None:
    """The first digest rewritten to sign an edited event (its signature no longer fits)."""
    digest = rows(store)[13]
    details = dict(digest["details"])
    details["payload"] = {**details["payload"], "events_sha256": "0" * 64}
    with store.engine.begin() as connection:
        connection.execute(update(EVENTS).where(EVENTS.c.seq == 13).values(details=details))


def tamper_another_key(store: Store, tmp_path: Path) -> None:
    """Events edited and every digest re-made with the intruder's own key."""
    mallory = generate_key_pair(tmp_path / "mallory-key")
    tamper_edit(store)
    with store.engine.begin() as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.seq >= 13))
    # The intruder has no audit key (append_digest checks HMACs): the digest is computed
    # as the daemon computes it and written as a row by hand.
    events = list(store_events(store))
    hasher = hashlib.sha256()
    for event in events:
        hasher.update(event.record())
    payload = {
        "version": 1, "number": 1, "time": "2026-01-01T10:00:00.000000Z", "first_seq": 1,
        "last_seq": 12, "events": 12, "events_sha256": hasher.hexdigest(),
        "head_hash": events[-1].hash, "previous_digest_sha256": "0" * 64,
        "key": mallory.fingerprint, "previous_key": None,
    }  # fmt: skip
    details = {"payload": payload, "signature": mallory.sign(canonical_json(payload).encode()),
               "cross_signature": None}  # fmt: skip
    with store.engine.begin() as connection:
        connection.execute(insert(EVENTS).values(
            seq=13, time=rows(store)[12]["time"], actor="driftwarden", action="audit.digest",
            stack=None, operation_id=None, outcome="signed", details=details,
            prev_hash=events[-1].hash, hash="e" * 64,
        ))  # fmt: skip


MATRIX: dict[str, tuple[Any, str, int]] = {
    # kind: (tamper, problem, first bad seq)
    "edit": (tamper_edit, "modified", 1),
    "delete": (tamper_delete, "deleted", 7),
    "delete-and-renumber": (tamper_delete_renumber, "unlinked", 7),
    "insert": (tamper_insert, "inserted", 8),
    "reorder": (tamper_reorder, "unlinked", 4),
    "replace-digest": (tamper_replace_digest, "bad-signature", 13),
    "another-key": (tamper_another_key, "unknown-key", 13),
}


@pytest.mark.parametrize("kind", list(MATRIX))
def test_tampering_is_detected_with_the_public_key_alone(
    store: Store, keys: tuple[SigningKey, PublicKey], tmp_path: Path, kind: str
) -> None:
    key, public = keys
    signed_store(store, key)
    drop_triggers(store)
    tamper, problem, first_bad = MATRIX[kind]
    tamper(store, tmp_path) if kind == "another-key" else tamper(store)
    report = check(store, public)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, problem, first_bad), report
    assert report.detail


def test_a_cut_tail_is_seen_against_a_head_recorded_elsewhere(
    store: Store, keys: tuple[SigningKey, PublicKey]
) -> None:
    key, public = keys
    _first, second = signed_store(store, key)
    drop_triggers(store)
    tamper_truncate(store)
    # What the public key alone shows: a shorter, consistent history...
    alone = check(store, public)
    assert alone.ok
    assert alone.digests == 1
    assert any("cut-off tail" in said for said in alone.unproven)
    # ...and with the head the journal or syslog kept from the second digest, the cut.
    seq, hash_ = second.head.split(":")
    report = check(store, public, expect_head=(int(seq), hash_))
    assert (report.ok, report.problem, report.first_bad_seq) == (False, "truncated", 26)


def test_key_rotation_keeps_old_digests_verifiable(
    store: Store, keys: tuple[SigningKey, PublicKey], tmp_path: Path
) -> None:
    old, old_public = keys
    fill(store, 4)
    sign(store, old)
    new = generate_key_pair(tmp_path / "new" / "audit-signing-key")
    new_public = load_public_key(tmp_path / "new" / "audit-signing-key.pub")
    fill(store, 4)
    rotated = sign(store, new, previous=old)
    assert rotated is not None
    assert rotated.payload["previous_key"] == old.fingerprint
    fill(store, 4)
    sign(store, new)
    report = check(store, old_public, new_public)
    assert report.ok, report
    assert report.keys == [old.fingerprint, new.fingerprint]
    assert report.notes == [
        f"key rotated at digest 2 (seq {rotated.seq}): {old.fingerprint[:16]}… → "
        f"{new.fingerprint[:16]}…, cross-signed by the old key"
    ]
    # Without the new key's public half, the digests after the rotation cannot be checked.
    partial = check(store, old_public)
    assert (partial.ok, partial.problem, partial.signed_through) == (False, "unknown-key", 4)


def test_signing_key_files(tmp_path: Path) -> None:
    path = tmp_path / "k" / "audit-signing-key"
    key = generate_key_pair(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_signing_key(path).fingerprint == key.fingerprint
    assert load_public_key(path).fingerprint == key.fingerprint  # the private file will do
    with pytest.raises(DriftwardenError, match="already exists"):
        generate_key_pair(path)
    assert load_signing_key(path).fingerprint == key.fingerprint  # never lost
    (tmp_path / "junk").write_text("not a key\n")
    with pytest.raises(DriftwardenError, match="not a PEM private key"):
        load_signing_key(tmp_path / "junk")
    with pytest.raises(DriftwardenError, match="not a PEM public key"):
        load_public_key(tmp_path / "junk")
    assert json.dumps(key.fingerprint)
