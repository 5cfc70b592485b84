"""`audit verify --public-key`: the chain checked against its signed digests with the
public key(s) alone — no audit key, no database write; from the store or from a native
export (store/digests.py says what a digest signs)."""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, TextIO

from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import AuditAction
from driftwarden.store.audit import GENESIS_HASH, ChainEvent
from driftwarden.store.digests import NO_DIGEST, Digest
from driftwarden.system.signing import PublicKey

DigestProblem = Literal[
    "modified",
    "deleted",
    "inserted",
    "unlinked",
    "truncated",
    "bad-signature",
    "unknown-key",
    "digest-chain",
]
_RECENT = 64  # hashes kept to tell an inserted event (its successor links past it)


@dataclass(frozen=True)
class DigestReport:
    """What the check found. `signed_through` is the last event a valid digest vouches
    for; `unproven` says what the public key alone cannot show; `notes`, key rotations."""

    ok: bool
    events: int
    digests: int
    signed_through: int
    head_seq: int
    head_hash: str
    keys: list[str] = field(default_factory=list)  # fingerprints that signed, in order
    first_bad_seq: int | None = None
    problem: DigestProblem | None = None
    detail: str | None = None
    unproven: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _BrokenError(Exception):
    def __init__(self, seq: int, problem: DigestProblem, detail: str) -> None:
        super().__init__(detail)
        self.seq, self.problem, self.detail = seq, problem, detail


class _Check:
    """One pass over the events, in seq order."""

    def __init__(self, keys: Sequence[PublicKey]) -> None:
        self.keys = {key.fingerprint: key for key in keys}
        self.hasher = hashlib.sha256()
        self.count = 0  # events hashed since the last digest
        self.seq, self.head_hash = 0, GENESIS_HASH
        self.recent: deque[tuple[str, int]] = deque(maxlen=_RECENT)
        self.signed_through = 0
        self.last: Digest | None = None
        self.digests = 0
        self.used: list[str] = []
        self.notes: list[str] = []

    def event(self, event: ChainEvent) -> None:
        if event.seq != self.seq + 1:
            if event.seq > self.seq + 1:
                gap = f"{self.seq + 1}" + (f"..{event.seq - 1}" if event.seq > self.seq + 2 else "")
                raise _BrokenError(
                    self.seq + 1,
                    "deleted",
                    f"seq {gap} missing: the chain jumps to seq {event.seq}",
                )
            raise _BrokenError(event.seq, "unlinked", f"seq {event.seq} comes after seq {self.seq}")
        if event.prev_hash != self.head_hash:
            raise _BrokenError(event.seq, *self._link_problem(event))
        if event.action == AuditAction.AUDIT_DIGEST:
            self.digest(event)
        self.hasher.update(event.record())
        self.count += 1
        self.recent.append((event.hash, event.seq))
        self.seq, self.head_hash = event.seq, event.hash

    def _link_problem(self, event: ChainEvent) -> tuple[DigestProblem, str]:
        earlier = dict(self.recent).get(event.prev_hash)
        if earlier is not None:  # it links past its predecessor(s): those were put in
            return "inserted", (
                f"event {event.seq} links to event {earlier}, not to event "
                f"{event.seq - 1}: events were inserted before it"
            )
        return "unlinked", (
            f"event {event.seq} does not link to event {event.seq - 1}: "
            "events were removed, moved or forged"
        )

    def digest(self, event: ChainEvent) -> None:
        try:
            digest = Digest.of(event)
        except ValueError as exc:
            raise _BrokenError(event.seq, "digest-chain", str(exc)) from None
        payload, seq = digest.payload, digest.seq
        name = f"digest {payload['number']} (seq {seq})"
        fingerprint = str(payload["key"])
        key = self.keys.get(fingerprint)
        if key is None:
            raise _BrokenError(
                seq,
                "unknown-key",
                f"{name} is signed by key {fingerprint[:16]}…, "
                "which is not one of the public keys given",
            )
        if not key.verifies(digest.message, digest.signature):
            raise _BrokenError(
                seq,
                "bad-signature",
                f"{name}: its signature does not verify: the digest was changed or replaced",
            )
        last = self.last
        number = int(last.payload["number"]) + 1 if last else 1
        previous = last.sha256 if last else NO_DIGEST
        if int(payload["number"]) != number or payload["previous_digest_sha256"] != previous:
            raise _BrokenError(
                seq,
                "digest-chain",
                f"{name} does not follow digest {number - 1}: a digest was removed or replaced",
            )
        if last is not None and last.payload["key"] != fingerprint:
            self._rotation(digest, last, name)
        first, through = int(payload["first_seq"]), int(payload["last_seq"])
        if (first, through, int(payload["events"])) != (
            self.signed_through + 1,
            seq - 1,
            self.count,
        ):
            raise _BrokenError(
                first,
                "modified",
                f"{name} signed events {first}..{through} "
                f"({payload['events']}), but the chain has {self.count} from seq "
                f"{self.signed_through + 1} to {seq - 1}",
            )
        if (self.hasher.hexdigest(), self.head_hash) != (
            payload["events_sha256"],
            payload["head_hash"],
        ):
            raise _BrokenError(
                first,
                "modified",
                f"events {first}..{through} do not hash to "
                f"what {name} signed: one was changed, inserted, removed or "
                "moved",
            )
        if not self.used or self.used[-1] != fingerprint:
            self.used.append(fingerprint)
        self.signed_through, self.last, self.digests = seq - 1, digest, self.digests + 1
        self.hasher, self.count = hashlib.sha256(), 0

    def _rotation(self, digest: Digest, last: Digest, name: str) -> None:
        old_fingerprint = str(last.payload["key"])
        if digest.payload.get("previous_key") != old_fingerprint:
            raise _BrokenError(
                digest.seq,
                "unknown-key",
                f"{name} changes the signing key without naming the old one",
            )
        old = self.keys[old_fingerprint]  # it signed the last digest
        crossed = digest.cross_signature is not None and old.verifies(
            digest.message, digest.cross_signature
        )
        self.notes.append(
            f"key rotated at {name}: {old_fingerprint[:16]}… → "
            f"{str(digest.payload['key'])[:16]}…, "
            + ("cross-signed by the old key" if crossed else "NOT cross-signed by the old key")
        )

    def report(self, broken: _BrokenError | None = None) -> DigestReport:
        unproven = [
            "each event's HMAC (the audit key's holder checks those: `audit verify`)",
            "a cut-off tail: compare with a head recorded elsewhere (the journal or syslog "
            "line of each digest) using --expect-head",
        ]
        if self.seq > self.signed_through:
            unproven.insert(
                0,
                f"events {self.signed_through + 1}..{self.seq}: after the last "
                "digest, not signed yet",
            )
        report = DigestReport(
            True,
            self.seq,
            self.digests,
            self.signed_through,
            self.seq,
            self.head_hash,
            self.used,
            unproven=unproven,
            notes=self.notes,
        )
        if broken is None:
            return report
        return replace(
            report, ok=False, first_bad_seq=broken.seq, problem=broken.problem, detail=broken.detail
        )


def verify_digests(
    events: Iterable[ChainEvent],
    keys: Sequence[PublicKey],
    *,
    expect_head: tuple[int, str] | None = None,
) -> DigestReport:
    """Check, in one pass: every digest's signature by one of `keys` (a change of key only
    where a digest names the old one), that the events between two digests hash to what
    the later one signed, that the digests chain, and that seqs and links run unbroken."""
    check = _Check(keys)
    anchor: str | None = None
    try:
        for event in events:
            check.event(event)
            if expect_head is not None and event.seq == expect_head[0]:
                anchor = event.hash
    except _BrokenError as broken:
        return check.report(broken)
    if expect_head is not None:
        seq, want = expect_head
        if check.seq < seq:
            return check.report(
                _BrokenError(
                    check.seq + 1,
                    "truncated",
                    f"the chain ends at seq {check.seq}; seq {seq} was recorded earlier",
                )
            )
        if seq > 0 and anchor != want.lower():
            return check.report(
                _BrokenError(
                    seq, "modified", f"event {seq}'s hash differs from the head recorded earlier"
                )
            )
    return check.report()


def read_native_export(lines: TextIO) -> Iterator[ChainEvent]:
    """The events of a native export (`audit export --format native`), in file order."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield ChainEvent.from_native(json.loads(line))
        except ValueError as exc:
            raise DriftwardenError(
                f"line {number} of the export is not an audit event: {exc}",
                hint="verify an export written by `driftwarden audit export --format native`",
            ) from None
