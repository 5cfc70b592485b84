"""The tamper-evident audit chain: HMAC-linked events, verification and export.

Each event's `hash` is HMAC-SHA256(key, prev_hash ‖ canonical JSON of the event), and
`prev_hash` is the previous event's hash (64 zeros for seq 1). Whoever holds the database
but not the key can neither edit, insert, delete nor reorder events without `verify`
noticing; cutting off the tail is caught by comparing with a head recorded elsewhere
(`expect_head`). The key therefore lives outside the database: a systemd credential or
a 0600 file in the state directory.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import sqlalchemy
from sqlalchemy import DateTime, String, Text, cast, func, select, text, type_coerce
from sqlmodel import Session

from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import AuditAction
from driftwarden.store.models import AuditEvent, utcnow
from driftwarden.system.credentials import credential
from driftwarden.system.files import UnusableFileError, read_capped

if TYPE_CHECKING:
    from driftwarden.store.db import Store

KEY_NAME = "audit-key"
KEY_BYTES = 32
MIN_KEY_BYTES = 16
GENESIS_HASH = "0" * 64
# Set on sessions opened by Store.write(): only those hold the lock that stops two
# appenders from reading the same head (SQLite: BEGIN IMMEDIATE).
WRITE_SESSION = "driftwarden.write"
# pg_advisory_xact_lock key serializing appenders on PostgreSQL ("driftwm" + 2).
CHAIN_LOCK = 0x6472_6966_7477_6D02
_STREAM_BATCH = 2000

Problem = Literal["modified", "deleted", "inserted", "reordered", "truncated"]

_EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]


# --- the key -------------------------------------------------------------------------


def load_audit_key(state_dir: Path, *, create: bool = True) -> bytes:
    """The systemd credential `audit-key` if given, else `<state_dir>/audit-key`.

    The state-dir key is generated on first use. Several processes may start at once:
    each writes its candidate to a private temporary file and hard-links it into place,
    which fails if the key exists, so nobody overwrites it and nobody reads a half-written
    key.
    """
    loaded = credential(KEY_NAME)
    if loaded is not None:
        return _read_key(loaded)
    path = state_dir / KEY_NAME
    if not path.exists():
        if not create:
            raise DriftwardenError(
                f"no audit key at {path}",
                hint="the key is created with the store: run a scan or the daemon first",
            )
        _create_key(path)
    return _read_key(path)


def _create_key(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        candidate = path.with_name(f".{KEY_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(KEY_BYTES) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process won: its key
                os.link(candidate, path)
        finally:
            candidate.unlink(missing_ok=True)
    except OSError as exc:
        raise DriftwardenError(
            f"cannot create the audit key {path}: {exc.strerror or exc}",
            hint="make the state directory writable, or provide the systemd credential "
            f"{KEY_NAME} (LoadCredential={KEY_NAME}:PATH)",
        ) from None


def _read_key(path: Path) -> bytes:
    try:
        raw = read_capped(path).strip()
    except UnusableFileError as exc:
        raise DriftwardenError(
            f"the audit key {path} {exc}",
            hint="run driftwarden as the user owning the state directory",
        ) from None
    try:
        key = bytes.fromhex(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = raw  # a credential need not be hex: then its bytes are the key
    if len(key) < MIN_KEY_BYTES:
        raise DriftwardenError(
            f"the audit key {path} is too short ({len(key)} bytes)",
            hint=f"use at least {MIN_KEY_BYTES} random bytes, e.g. `openssl rand -hex 32`",
        )
    return key


# --- hashing -------------------------------------------------------------------------

_quote = json.encoder.encode_basestring_ascii


def canonical_json(value: Any) -> str:
    """Sorted keys, compact separators, ASCII only (any string survives any encoding).

    Also the engine's JSON serializer, so stored details are already in this form and
    `verify` can hash the stored text without parsing it.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def iso_utc(when: datetime) -> str:
    """ISO-8601 UTC with microseconds and 'Z': the one textual form hashed and exported."""
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _nullable(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def canonical_event(
    seq: int,
    time: str,
    actor: str,
    action: str,
    stack: str | None,
    operation_id: str | None,
    outcome: str | None,
    details_json: str,
) -> bytes:
    """`canonical_json` of the event, built directly (verify's hot path): `time` is
    `iso_utc(...)` and `details_json` is `canonical_json(details)`."""
    return (
        f'{{"action":{_quote(action)},"actor":{_quote(actor)},"details":{details_json},'
        f'"operation_id":{_nullable(operation_id)},"outcome":{_nullable(outcome)},'
        f'"seq":{int(seq)},"stack":{_nullable(stack)},"time":"{time}"}}'
    ).encode()


# --- verification report -------------------------------------------------------------


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of `AuditChain.verify`.

    `head_seq`/`head_hash` are the last event that verified (0 and 64 zeros for an empty
    chain); for a broken chain `first_bad_seq`, `problem` and a one-line `detail` say
    where and what.
    """

    ok: bool
    events_checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: Problem | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ChainEvent(NamedTuple):
    """An event in hashing form: time as `iso_utc`, details as JSON text. The form the
    signed digests hash (`record`) and the native export writes (`native`)."""

    seq: int
    time: str
    actor: str
    action: str
    stack: str | None
    operation_id: str | None
    outcome: str | None
    details: str
    prev_hash: str
    hash: str

    def canonical(self, seq: int | None = None) -> bytes:
        return canonical_event(
            self.seq if seq is None else seq, self.time, self.actor, self.action,
            self.stack, self.operation_id, self.outcome, self.details,
        )  # fmt: skip

    def normalized(self) -> ChainEvent:
        """With details re-serialized canonically (if stored in another valid form)."""
        try:
            details = canonical_json(json.loads(self.details))
        except (TypeError, ValueError):
            return self  # not JSON at all: cannot match its HMAC anyway
        return self._replace(details=details)

    def record(self) -> bytes:
        """What a digest's `events_sha256` hashes for this event (store/digests.py)."""
        return b"%s\n%s\n%s\n" % (self.canonical(), self.prev_hash.encode(), self.hash.encode())

    def native(self) -> dict[str, Any]:
        """The event as `audit export --format native` writes it."""
        return {
            "seq": self.seq, "time": self.time, "actor": self.actor, "action": self.action,
            "stack": self.stack, "operation_id": self.operation_id, "outcome": self.outcome,
            "details": json.loads(self.details), "prev_hash": self.prev_hash, "hash": self.hash,
        }  # fmt: skip

    @classmethod
    def from_native(cls, record: Any) -> ChainEvent:
        """A line of the native export (ValueError: not one)."""
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        try:
            return cls(
                int(record["seq"]), str(record["time"]), str(record["actor"]),
                str(record["action"]), _optional_text(record.get("stack")),
                _optional_text(record.get("operation_id")),
                _optional_text(record.get("outcome")),
                canonical_json(record.get("details", {})), str(record["prev_hash"]),
                str(record["hash"]),
            )  # fmt: skip
        except (KeyError, TypeError) as exc:
            raise ValueError(f"missing or malformed field {exc}") from None


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _raw_columns(dialect: str) -> tuple[Any, ...]:
    """The event's columns without SQLAlchemy's per-row conversions (verify's hot path):
    details as their stored JSON text, time as stored (text on SQLite)."""
    c = _EVENTS.c
    if dialect == "sqlite":
        time: Any = type_coerce(c.time, String)
        details: Any = type_coerce(c.details, String)
    else:
        time = type_coerce(c.time, DateTime(timezone=True))
        details = cast(c.details, Text)
    return (c.seq, time, c.actor, c.action, c.stack, c.operation_id, c.outcome, details,
            c.prev_hash, c.hash)  # fmt: skip


def _time_text(value: Any) -> str:
    if isinstance(value, datetime):
        return iso_utc(value)
    if not isinstance(value, str):
        return _text(value)  # SQLite stores whatever an intruder writes
    if len(value) == 26 and value[10] == " ":
        return f"{value[:10]}T{value[11:]}Z"  # SQLAlchemy's SQLite format, always UTC here
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value  # garbage: cannot match its HMAC
    return iso_utc(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "null" if value is None else str(value)


def _to_event(raw: Any) -> ChainEvent:
    """A row as an event, every field coerced to text: SQLite keeps whatever type an
    intruder writes, and verify must report that, not crash on it."""
    seq, time, actor, action, stack, operation_id, outcome, details, prev_hash, hash_ = raw

    def optional(value: Any) -> str | None:
        return None if value is None else _text(value)

    return ChainEvent(
        seq, _time_text(time), _text(actor), _text(action), optional(stack),
        optional(operation_id), optional(outcome), _text(details), _text(prev_hash),
        _text(hash_),
    )  # fmt: skip


# --- the chain -----------------------------------------------------------------------


class AuditChain:
    def __init__(self, key: bytes | None) -> None:
        """`key` None: a chain that can be read (exported, checked against its signed
        digests) but neither appended to nor HMAC-verified — an auditor's."""
        if key is not None and len(key) < MIN_KEY_BYTES:
            raise ValueError(f"audit key too short: {len(key)} bytes")
        self._given_key = key

    @property
    def _key(self) -> bytes:
        if self._given_key is None:
            raise DriftwardenError(
                "this needs the audit key, which was not loaded",
                hint="run as the user owning the state directory, or verify with "
                "`audit verify --public-key FILE`",
            )
        return self._given_key

    def _mac(self, prev_hash: str, canonical: bytes) -> str:
        return hmac.digest(self._key, prev_hash.encode() + canonical, "sha256").hex()

    def _authentic(self, event: ChainEvent, seq: int | None = None) -> bool:
        return self._mac(event.prev_hash, event.canonical(seq)) == event.hash

    def authentic(self, prev_hash: str, hash_: str, canonical: bytes) -> bool:
        """Whether an event (its canonical form) matches its HMAC."""
        return self._mac(prev_hash, canonical) == hash_

    def append(
        self,
        session: Session,
        *,
        actor: str,
        action: str,
        stack: str | None = None,
        operation_id: str | None = None,
        outcome: str | None = None,
        details: dict[str, Any] | None = None,
        time: datetime | None = None,
    ) -> AuditEvent:
        """Append one event; call inside `Store.write()` (committed with the caller's work)."""
        if not session.info.get(WRITE_SESSION):
            raise RuntimeError("AuditChain.append needs a session from Store.write()")
        when = time or utcnow()
        if when.tzinfo is None:
            raise ValueError("naive datetime given to the audit chain: use datetime.now(UTC)")
        when = when.astimezone(UTC)
        # Round-tripped first: what the JSON column gives back (int keys become strings).
        details_json = canonical_json(json.loads(json.dumps(details or {}, allow_nan=False)))
        if session.connection().dialect.name == "postgresql":
            # Held until commit: the next appender reads the head only after ours is in.
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
        head = session.execute(
            select(_EVENTS.c.seq, _EVENTS.c.hash).order_by(_EVENTS.c.seq.desc()).limit(1)
        ).first()
        seq, prev_hash = (head.seq + 1, head.hash) if head else (1, GENESIS_HASH)
        canonical = canonical_event(
            seq, iso_utc(when), actor, action, stack, operation_id, outcome, details_json
        )
        event = AuditEvent(
            seq=seq,
            time=when,
            actor=actor,
            action=action,
            stack=stack,
            operation_id=operation_id,
            outcome=outcome,
            details=json.loads(details_json),
            prev_hash=prev_hash,
            hash=self._mac(prev_hash, canonical),
        )
        session.add(event)
        session.flush()
        return event

    def head(self, store: Store) -> tuple[int, str]:
        """The newest (seq, hash), as stored (not verified): worth recording elsewhere."""
        with store.read() as session:
            row = session.execute(
                select(_EVENTS.c.seq, _EVENTS.c.hash).order_by(_EVENTS.c.seq.desc()).limit(1)
            ).first()
        return (row.seq, row.hash) if row else (0, GENESIS_HASH)

    def verify(self, store: Store, expect_head: tuple[int, str] | None = None) -> VerifyReport:
        """Recompute every link in seq order, streaming; classify the first break."""
        expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
        anchor_seq = expect_head[0] if expect_head else -1
        anchor_hash: str | None = None
        with store.read() as session:
            connection = session.connection()
            result = connection.execute(
                select(*_raw_columns(store.dialect))
                .order_by(_EVENTS.c.seq)
                .execution_options(yield_per=_STREAM_BATCH)
            )
            rows = iter(result)
            key, mac = self._key, hmac.digest
            for raw in rows:
                # Hot path, inlined: most events are intact and stored canonically.
                seq, time, actor, action, stack, op_id, outcome, details, prev, hash_ = raw
                if seq == expected_seq and prev == prev_hash:
                    try:
                        canonical = canonical_event(
                            seq, _time_text(time), actor, action, stack, op_id, outcome, details
                        )
                        # (`==`, not compare_digest: no secret to leak here, and a
                        # tampered non-ASCII hash must be reported, not crash the check.)
                        ok = mac(key, prev.encode() + canonical, "sha256").hex() == hash_
                    except (TypeError, AttributeError):  # a value of the wrong type
                        ok = False
                    if ok or self._authentic(_to_event(raw).normalized()):
                        if seq == anchor_seq:
                            anchor_hash = hash_
                        expected_seq, prev_hash, checked = seq + 1, hash_, checked + 1
                        continue
                event = _to_event(raw)
                following = next(map(_to_event, rows), None)
                result.close()
                problem, detail = self._classify(
                    connection,
                    expected_seq,
                    prev_hash,
                    event.normalized(),
                    following.normalized() if following else None,
                )
                return VerifyReport(
                    ok=False,
                    events_checked=checked,
                    head_seq=expected_seq - 1,
                    head_hash=prev_hash,
                    first_bad_seq=expected_seq,
                    problem=problem,
                    detail=detail,
                )
        report = VerifyReport(True, checked, expected_seq - 1, prev_hash)
        if expect_head is not None:
            return _check_head(report, expect_head, anchor_hash)
        return report

    def _classify(
        self,
        connection: sqlalchemy.Connection,
        seq: int,
        prev_hash: str,
        event: ChainEvent,
        following: ChainEvent | None,
    ) -> tuple[Problem, str]:
        """What happened at the first broken position `seq` (`event` is what is there)."""
        if event.seq != seq:
            missing = f"seq {seq}" if event.seq == seq + 1 else f"seqs {seq}..{event.seq - 1}"
            return "deleted", f"{missing} missing: the chain jumps to seq {event.seq}"
        # A forged event's successor still links to the last good event, skipping it.
        inserted = (
            f"event {seq} has no valid HMAC and event {following.seq} links past it to "
            f"event {seq - 1}"
            if following is not None and following.prev_hash == prev_hash
            else None
        )
        if event.prev_hash == prev_hash:
            if inserted:
                return "inserted", inserted
            return "modified", f"event {seq}'s content does not match its HMAC"
        if self._genuine(connection, event):
            later = connection.execute(
                select(_EVENTS.c.seq)
                .where(_EVENTS.c.hash == event.prev_hash, _EVENTS.c.seq > seq)
                .order_by(_EVENTS.c.seq)
                .limit(1)
            ).scalar()
            if later is not None:
                return "reordered", (
                    f"the event at seq {seq} was written after event {later} (its prev_hash "
                    f"is that event's hash)"
                )
            return "deleted", f"the event at seq {seq} is authentic but its predecessor is gone"
        if inserted:
            return "inserted", inserted
        return "modified", f"event {seq}'s prev_hash and content do not match the chain"

    def _genuine(self, connection: sqlalchemy.Connection, event: ChainEvent) -> bool:
        """Whether the event's HMAC is valid at its own seq or, if moved, at another one.

        Only on the failure path: the seq is hashed, so a moved event is tried at every
        seq the chain could have given it (one linear pass).
        """
        if self._authentic(event):
            return True
        top = connection.execute(select(func.max(_EVENTS.c.seq))).scalar() or 0
        return any(self._authentic(event, seq) for seq in range(1, top + 2))


def _check_head(
    report: VerifyReport, expect_head: tuple[int, str], seen_hash: str | None
) -> VerifyReport:
    seq, expected_hash = expect_head
    if report.head_seq < seq:
        return replace(
            report,
            ok=False,
            first_bad_seq=report.head_seq + 1,
            problem="truncated",
            detail=f"the chain ends at seq {report.head_seq}; seq {seq} was recorded earlier",
        )
    if seq > 0 and seen_hash != expected_hash.lower():
        return replace(
            report,
            ok=False,
            first_bad_seq=seq,
            problem="modified",
            detail=f"event {seq}'s hash differs from the head recorded earlier",
        )
    return report


def record_config(
    session: Session, audit: AuditChain, *, actor: str, path: str, sha256: str
) -> bool:
    """Append `config.loaded` unless the last one recorded this same file and hash."""
    details = {"path": path, "sha256": sha256}
    last = session.execute(
        select(AuditEvent.details)
        .where(AuditEvent.action == AuditAction.CONFIG_LOADED)  # type: ignore[arg-type]
        .order_by(_EVENTS.c.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    if last == details:
        return False
    audit.append(session, actor=actor, action=AuditAction.CONFIG_LOADED, details=details)
    return True
