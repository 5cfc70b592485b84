"""Audit sources in the store: the platform's events (append-only, each batch recorded
in the audit chain with a digest of what it stored), each source's cursor, and the
platform objects each stack manages."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from driftwarden.domain.model import AuditAction
from driftwarden.domain.platform import ManagedRef, ObjectRef, PlatformEvent
from driftwarden.store.audit import AuditChain, canonical_json
from driftwarden.store.models import ManagedObjectRow, PlatformEventRow, SourceCursor, utcnow


@dataclass(frozen=True)
class ReadCounts:
    """What one batch of a source held: lines read, events kept and dropped."""

    read: int = 0
    kept: int = 0
    dropped: int = 0
    malformed: int = 0
    lost: int = 0


@dataclass(frozen=True)
class SourceProgress:
    """A source's cursor and counters, as stored."""

    source: str
    cursor: str | None
    updated_at: datetime | None
    read: int
    kept: int
    dropped: int
    malformed: int
    lost: int
    last_event_at: datetime | None
    platform_errors: dict[str, int] | None = None
    platform_errors_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """`status --json`'s and the metrics' view (no cursor: a detail of the file)."""
        return {
            "source": self.source, "read": self.read, "kept": self.kept,
            "dropped": self.dropped, "malformed": self.malformed, "lost": self.lost,
            "last_event_at": self.last_event_at, "last_read_at": self.updated_at,
            "platform_errors": self.platform_errors,
            "platform_errors_at": self.platform_errors_at,
        }  # fmt: skip


def source_progress(session: Session, source: str) -> SourceProgress:
    row = session.get(SourceCursor, source)
    if row is None:
        return SourceProgress(source, None, None, 0, 0, 0, 0, 0, None)
    return SourceProgress(source, row.cursor, row.updated_at, row.read, row.kept, row.dropped,
                          row.malformed, row.lost, row.last_event_at, row.platform_errors,
                          row.platform_errors_at)  # fmt: skip


def record_platform_errors(session: Session, source: str, errors: Mapping[str, int]) -> None:
    """What the platform says it failed to write, as asked just now."""
    now = utcnow()
    row = session.get(SourceCursor, source) or SourceCursor(source=source, cursor="",
                                                            updated_at=now)  # fmt: skip
    row.platform_errors = dict(errors)
    row.platform_errors_at = now
    session.add(row)


def record_platform_events(
    session: Session,
    audit: AuditChain,
    *,
    source: str,
    events: Sequence[PlatformEvent],
    kinds: Mapping[tuple[str, str], str],
    cursor: str | None,
    counts: ReadCounts,
    actor: str,
) -> list[PlatformEvent]:
    """Store the events not stored yet (by source and id) and the cursor after them, in
    the caller's transaction; the new ones. Their batch is one audit event holding their
    ids and a SHA-256 over what was stored, so the chain vouches for every row."""
    ids = [event.event_id for event in events]
    known: set[str] = set()
    for start in range(0, len(ids), 500):
        known.update(session.execute(
            select(col(PlatformEventRow.event_id)).where(
                col(PlatformEventRow.source) == source,
                col(PlatformEventRow.event_id).in_(ids[start : start + 500]),
            )
        ).scalars())  # fmt: skip
    fresh: list[PlatformEvent] = []
    seen: set[str] = set()
    for event in events:
        if event.event_id not in known and event.event_id not in seen:
            fresh.append(event)
            seen.add(event.event_id)
    now = utcnow()
    if fresh:
        rows = [_row(event, kinds, now) for event in fresh]
        digest = hashlib.sha256(
            "\n".join(canonical_json(_digested(row)) for row in rows).encode()
        ).hexdigest()
        link = audit.append(
            session, actor=actor, action=AuditAction.PLATFORM_EVENTS.value,
            details={"source": source, "count": len(rows), "first": rows[0].event_id,
                     "last": rows[-1].event_id, "sha256": digest,
                     "people": sorted({r.impersonated_user or r.user for r in rows
                                       if not r.engine})},
        )  # fmt: skip
        for row in rows:
            row.seq = link.seq
        # Another reader of the same source (a CLI scan beside the daemon) may have stored
        # some meanwhile: theirs stay, ours are skipped.
        statement = _insert_ignoring_duplicates(session)
        session.execute(statement, [row.model_dump() for row in rows])
    _advance(session, source, cursor, counts, fresh, now)
    return fresh


def _insert_ignoring_duplicates(session: Session) -> Any:
    table = PlatformEventRow.__table__  # type: ignore[attr-defined]
    if session.connection().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if session.connection().dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return insert(table)


def _advance(
    session: Session,
    source: str,
    cursor: str | None,
    counts: ReadCounts,
    fresh: Sequence[PlatformEvent],
    now: datetime,
) -> None:
    row = session.get(SourceCursor, source) or SourceCursor(source=source, cursor="",
                                                            updated_at=now)  # fmt: skip
    if cursor is not None:
        row.cursor = cursor
    row.updated_at = now
    row.read += counts.read
    row.kept += counts.kept
    row.dropped += counts.dropped
    row.malformed += counts.malformed
    row.lost += counts.lost
    if fresh:
        newest = max(event.time for event in fresh)
        row.last_event_at = max(row.last_event_at or newest, newest)
    session.add(row)


def _row(
    event: PlatformEvent, kinds: Mapping[tuple[str, str], str], now: datetime
) -> PlatformEventRow:
    ref = event.object
    return PlatformEventRow(
        source=event.source, event_id=event.event_id, time=event.time, received_at=now,
        verb=event.verb, user=event.user, groups=list(event.groups),
        impersonated_user=event.impersonated_user,
        impersonated_groups=list(event.impersonated_groups), user_agent=event.user_agent,
        source_ips=list(event.source_ips), api_group=ref.api_group,
        api_version=ref.api_version, resource=ref.resource,
        kind=kinds.get((ref.api_group, ref.resource), ""), subresource=ref.subresource,
        namespace=ref.namespace or "", name=ref.name or "", status=event.status,
        field_manager=event.field_manager, fields=list(event.fields), body=event.body,
        engine=event.engine,
    )  # fmt: skip


def _digested(row: PlatformEventRow) -> dict[str, object]:
    return {
        "source": row.source, "event_id": row.event_id, "time": row.time.isoformat(),
        "verb": row.verb, "user": row.user, "impersonated_user": row.impersonated_user,
        "api_group": row.api_group, "resource": row.resource, "namespace": row.namespace,
        "name": row.name, "status": row.status, "field_manager": row.field_manager,
    }  # fmt: skip


def platform_event(row: PlatformEventRow) -> PlatformEvent:
    return PlatformEvent(
        source=row.source, event_id=row.event_id, time=row.time, verb=row.verb,
        user=row.user, groups=tuple(row.groups or ()), user_agent=row.user_agent,
        source_ips=tuple(row.source_ips or ()),
        object=ObjectRef(row.api_group, row.resource, row.namespace or None, row.name or None,
                         row.api_version, row.subresource),
        status=row.status, impersonated_user=row.impersonated_user,
        impersonated_groups=tuple(row.impersonated_groups or ()),
        field_manager=row.field_manager, fields=tuple(row.fields or ()), body=row.body,
        engine=row.engine,
    )  # fmt: skip


def writes_to(
    session: Session,
    *,
    api_group: str,
    kind: str,
    namespace: str | None,
    name: str,
    since: datetime | None = None,
    people_only: bool = True,
) -> list[PlatformEvent]:
    """Writes to one object, newest first (with `people_only`: not the engine's)."""
    query = select(PlatformEventRow).where(
        col(PlatformEventRow.api_group) == api_group, col(PlatformEventRow.kind) == kind,
        col(PlatformEventRow.namespace) == (namespace or ""),
        col(PlatformEventRow.name) == name,
    )  # fmt: skip
    if since is not None:
        query = query.where(col(PlatformEventRow.time) >= since)
    if people_only:
        query = query.where(col(PlatformEventRow.engine).is_(False))
    rows = session.execute(query.order_by(col(PlatformEventRow.time).desc())).scalars()
    return [platform_event(row) for row in rows]


def replace_managed(session: Session, stack: str, objects: Iterable[ManagedRef]) -> None:
    """What `stack` manages now (its latest successful drift check read it)."""
    session.execute(delete(ManagedObjectRow).where(col(ManagedObjectRow.stack) == stack))
    now = utcnow()
    for ref in {ref.urn: ref for ref in objects}.values():
        session.add(ManagedObjectRow(stack=stack, urn=ref.urn, api_group=ref.api_group,
                                  api_version=ref.api_version, kind=ref.kind,
                                  namespace=ref.namespace or "", name=ref.name,
                                  recorded_at=now))  # fmt: skip


def managed_objects(
    session: Session, stacks: Sequence[str] | None = None
) -> list[tuple[str, ManagedRef]]:
    """(stack, object) for every managed object (of `stacks`, or of all)."""
    query = select(ManagedObjectRow)
    if stacks is not None:
        query = query.where(col(ManagedObjectRow.stack).in_(stacks))
    return [
        (row.stack, ManagedRef(row.urn, row.api_group, row.api_version, row.kind,
                               row.namespace or None, row.name))
        for row in session.execute(query).scalars()
    ]  # fmt: skip


def stacks_managing(
    session: Session, keys: Iterable[tuple[str, str, str, str]]
) -> dict[tuple[str, str, str, str], list[str]]:
    """For each (group, kind, namespace, name), the stacks managing it."""
    wanted = list(set(keys))
    if not wanted:
        return {}
    found: dict[tuple[str, str, str, str], list[str]] = {key: [] for key in wanted}
    for start in range(0, len(wanted), 200):
        chunk = wanted[start : start + 200]
        clause = or_(*[and_(col(ManagedObjectRow.api_group) == g, col(ManagedObjectRow.kind) == k,
                            col(ManagedObjectRow.namespace) == ns, col(ManagedObjectRow.name) == n)
                       for g, k, ns, n in chunk])  # fmt: skip
        for row in session.execute(select(ManagedObjectRow).where(clause)).scalars():
            found[(row.api_group, row.kind, row.namespace, row.name)].append(row.stack)
    return found
