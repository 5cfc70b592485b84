"""Signed digests of the audit chain: what an auditor verifies with the public key alone.

The HMAC chain (store/audit.py) proves nothing to someone without its key, and its key
holder could rebuild it. So, on a schedule and at shutdown, the events appended since the
last digest are hashed and the hash is signed with an Ed25519 key (system/signing.py):
the digest is itself an event of the chain (`audit.digest`), so the next digest covers it
and an export or a forwarder carries it like any other event.

A digest's `payload` (signed: `signature` over its canonical JSON):

    version, number, time, first_seq, last_seq (= the digest's own seq - 1), events,
    events_sha256, head_hash (the hash of event last_seq), previous_digest_sha256,
    key (the signing key's fingerprint), previous_key (named when the key changed)

`events_sha256` is SHA-256 over, for each event first_seq..last_seq in order, its
canonical JSON (store/audit.py: `canonical_event`), "\\n", its prev_hash, "\\n", its hash,
"\\n". `previous_digest_sha256` is SHA-256 of the previous digest's canonical
`{"payload": …, "signature": …}` (64 zeros for the first). During a key rotation the old
key also signs the new key's first payload (`cross_signature`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlmodel import Session

from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import AuditAction
from driftwarden.store.audit import (
    _EVENTS,
    _STREAM_BATCH,
    CHAIN_LOCK,
    AuditChain,
    ChainEvent,
    _raw_columns,
    _to_event,
    canonical_json,
    iso_utc,
)
from driftwarden.store.models import utcnow
from driftwarden.system.signing import SigningKey

if TYPE_CHECKING:
    from driftwarden.store.db import Store

DIGEST_ACTOR = "driftwarden"
DIGEST_OUTCOME = "signed"
FORMAT_VERSION = 1
NO_DIGEST = "0" * 64


def store_events(
    store: Store, after_seq: int = 0, limit: int | None = None
) -> Iterator[ChainEvent]:
    """The store's events after `after_seq` (at most `limit`), in seq order, streamed."""
    with store.read() as session:
        yield from _session_events(session, store.dialect, after_seq, limit)


def _session_events(
    session: Session, dialect: str, after_seq: int, limit: int | None = None
) -> Iterator[ChainEvent]:
    query = select(*_raw_columns(dialect)).where(_EVENTS.c.seq > after_seq).order_by(_EVENTS.c.seq)
    if limit is not None:
        query = query.limit(limit)
    result = session.connection().execute(query.execution_options(yield_per=_STREAM_BATCH))
    for raw in result:
        yield _to_event(raw).normalized()


@dataclass(frozen=True)
class Digest:
    """A digest event's content: the signed payload, its signature(s) and where it is."""

    seq: int
    payload: dict[str, Any]
    signature: str
    cross_signature: str | None

    @property
    def message(self) -> bytes:
        return canonical_json(self.payload).encode()

    @property
    def sha256(self) -> str:
        signed = {"payload": self.payload, "signature": self.signature}
        return hashlib.sha256(canonical_json(signed).encode()).hexdigest()

    @property
    def last_seq(self) -> int:
        return int(self.payload["last_seq"])

    @classmethod
    def of(cls, event: ChainEvent) -> Digest:
        """The digest an `audit.digest` event carries (ValueError: it carries none)."""
        try:
            details = json.loads(event.details)
            payload = details["payload"]
            if not isinstance(payload, dict) or not isinstance(details["signature"], str):
                raise TypeError("payload or signature")
            for name in ("number", "first_seq", "last_seq", "events"):
                int(payload[name])
            for name in ("events_sha256", "head_hash", "previous_digest_sha256", "key"):
                str(payload[name])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"digest at seq {event.seq} is malformed ({exc})") from None
        cross = details.get("cross_signature")
        return cls(
            event.seq, payload, details["signature"], cross if isinstance(cross, str) else None
        )


@dataclass(frozen=True)
class Sealed:
    """A digest just appended: its payload and the chain's new head (the digest event)."""

    payload: dict[str, Any]
    seq: int
    hash: str

    @property
    def head(self) -> str:
        return f"{self.seq}:{self.hash}"


def append_digest(
    session: Session,
    audit: AuditChain,
    key: SigningKey,
    *,
    previous_key: SigningKey | None = None,
    force: bool = False,
) -> Sealed | None:
    """Hash and sign the events since the last digest and append the digest; call inside
    `Store.write()`. None when nothing but digests was appended since (unless `force`).
    The events are checked against their HMACs first: a broken chain is never signed."""
    dialect = session.connection().dialect.name
    if dialect == "postgresql":  # no event may slip in between the hash and the append
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
    last = _last_digest(session, dialect)
    start = last.last_seq if last else 0
    hasher = hashlib.sha256()
    count = substantive = 0
    expected, prev_hash = start + 1, None
    head_hash = None
    for event in _session_events(session, dialect, start):
        if event.seq != expected or (prev_hash is not None and event.prev_hash != prev_hash):
            raise DriftwardenError(
                f"the audit chain is broken at seq {expected}: no digest was signed",
                hint="run `driftwarden audit verify` to see what happened",
            )
        if not audit.authentic(event.prev_hash, event.hash, event.canonical()):
            raise DriftwardenError(
                f"event {event.seq} does not match its HMAC: no digest was signed",
                hint="run `driftwarden audit verify` to see what happened",
            )
        hasher.update(event.record())
        count += 1
        substantive += event.action != AuditAction.AUDIT_DIGEST
        expected, prev_hash, head_hash = event.seq + 1, event.hash, event.hash
    if count == 0 or (substantive == 0 and not force):
        return None
    rotated = last is not None and last.payload.get("key") != key.fingerprint
    payload = {
        "version": FORMAT_VERSION,
        "number": (int(last.payload["number"]) + 1) if last else 1,
        "time": iso_utc(utcnow()),
        "first_seq": start + 1,
        "last_seq": expected - 1,
        "events": count,
        "events_sha256": hasher.hexdigest(),
        "head_hash": head_hash,
        "previous_digest_sha256": last.sha256 if last else NO_DIGEST,
        "key": key.fingerprint,
        "previous_key": str(last.payload["key"]) if last and rotated else None,
    }
    message = canonical_json(payload).encode()
    cross = None
    if (
        rotated
        and previous_key is not None
        and last is not None
        and previous_key.fingerprint == last.payload.get("key")
    ):
        cross = previous_key.sign(message)
    appended = audit.append(
        session,
        actor=DIGEST_ACTOR,
        action=AuditAction.AUDIT_DIGEST,
        outcome=DIGEST_OUTCOME,
        details={"payload": payload, "signature": key.sign(message), "cross_signature": cross},
    )
    return Sealed(payload, appended.seq, appended.hash)


def _last_digest(session: Session, dialect: str) -> Digest | None:
    row = session.execute(
        select(*_raw_columns(dialect))
        .where(_EVENTS.c.action == AuditAction.AUDIT_DIGEST.value)
        .order_by(_EVENTS.c.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    try:
        return Digest.of(_to_event(row).normalized())
    except ValueError as exc:
        raise DriftwardenError(
            f"the last audit digest is unreadable: {exc}",
            hint="run `driftwarden audit verify --public-key FILE` to see what happened",
        ) from None


def last_digest_time(store: Store) -> datetime | None:
    """When the newest digest was appended (None: never)."""
    with store.read() as session:
        time = session.execute(
            select(_EVENTS.c.time)
            .where(_EVENTS.c.action == AuditAction.AUDIT_DIGEST.value)
            .order_by(_EVENTS.c.seq.desc())
            .limit(1)
        ).scalar()
    return time if isinstance(time, datetime) else None
