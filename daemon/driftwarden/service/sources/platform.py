"""Audit sources at work: the platform's events read into the store, the stacks they
concern, who made a difference, and what was created beside the stacks.

A source's events are kept as PlatformEvents (sources/kubernetes.py says what is kept,
dropped and redacted), each batch in one transaction with the source's cursor. An event
concerns a stack when it writes an object the stack manages (its latest drift check read
the state), or creates an object in the stack's scope (the namespaces it manages and the
source's cluster-scoped kinds). The engine's own writes concern nobody.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from driftwarden.config import AuditSourceConfig, Config, StackConfig
from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import (
    Attribution,
    OutOfBandAttribution,
    PlatformAttribution,
    ResourceChange,
)
from driftwarden.domain.platform import ManagedRef, PlatformEvent
from driftwarden.drift.platform import made_by_machinery, managed_refs, unmanaged_change
from driftwarden.service.logs import logger
from driftwarden.service.runtime import Runtime
from driftwarden.sources.kinds import KindIndex
from driftwarden.sources.kubeapi import KubeApi
from driftwarden.sources.kubernetes import Verdict, read_event
from driftwarden.sources.tail import Cursor, read_batch
from driftwarden.store.platform import (
    ReadCounts,
    SourceProgress,
    managed_objects,
    record_platform_errors,
    record_platform_events,
    source_progress,
    writes_to,
)
from driftwarden.system.failpoints import crash_point

# An actor for what a source writes into the chain.
SOURCE_ACTOR = "audit-source"
# Batches read in one go by a catch-up (a burst is read whole, a flood in slices).
CATCH_UP_BATCHES = 64


def sources_of(config: Config, stack: StackConfig) -> list[AuditSourceConfig]:
    """The audit sources whose platform holds `stack`'s objects."""
    return [s for s in config.audit_sources if s.stacks is None or stack.name in s.stacks]


def stacks_of(config: Config, source: AuditSourceConfig) -> list[StackConfig]:
    return [s for s in config.stacks if source.stacks is None or s.name in source.stacks]


def kubeconfig_of(source: AuditSourceConfig, stacks: Sequence[StackConfig]) -> Path | None:
    """The kubeconfig for discovery and the inventory: the source's, else the first of
    its stacks' KUBECONFIG."""
    if source.kubeconfig is not None:
        return source.kubeconfig
    for stack in stacks:
        if stack.env.get("KUBECONFIG"):
            return Path(stack.env["KUBECONFIG"].split(":")[0])
    return None


@dataclass(frozen=True)
class Ingested:
    """What one read of a source stored: the new events and what the read counted."""

    events: list[PlatformEvent]
    counts: ReadCounts
    behind: bool = False  # more is waiting than one catch-up reads


class SourceReader:
    """One audit source of a process: its reads are one at a time (a lock), its kinds
    known through one discovery."""

    def __init__(self, runtime: Runtime, source: AuditSourceConfig) -> None:
        self.runtime = runtime
        self.source = source
        self._lock = threading.Lock()
        stacks = stacks_of(runtime.config, source)
        self.sensitive = tuple(dict.fromkeys(p for s in stacks for p in s.sensitive_paths))
        self.kubeconfig = kubeconfig_of(source, stacks)
        kubeconfig = self.kubeconfig
        self.kinds = KindIndex(
            (lambda: KubeApi.from_kubeconfig(kubeconfig).resources()) if kubeconfig else None
        )

    def check_platform(self) -> dict[str, int] | None:
        """Ask the platform how many audit events it failed to write (per backend) and
        keep the answer; None when it cannot be asked (no kubeconfig: not an error)."""
        if self.kubeconfig is None:
            return None
        errors = feed_errors(self.source, KubeApi.from_kubeconfig(self.kubeconfig).audit_errors())
        with self.runtime.store.write() as session:
            record_platform_errors(session, self.source.name, errors)
        return errors

    def store(
        self, verdicts: Sequence[Verdict], cursor: Cursor | None, *, lost: bool = False
    ) -> Ingested:
        """Keep what the verdicts kept, with the cursor after them, in one transaction."""
        events = [v.event for v in verdicts if v.event is not None]
        counts = ReadCounts(
            read=len(verdicts), kept=len(events),
            dropped=sum(v.dropped not in (None, "malformed") for v in verdicts),
            malformed=sum(v.dropped == "malformed" for v in verdicts), lost=int(lost),
        )  # fmt: skip
        kinds = self.kinds.table({(e.object.api_group, e.object.resource) for e in events})
        with self._lock, self.runtime.store.write() as session:
            fresh = record_platform_events(
                session, self.runtime.store.audit, source=self.source.name, events=events,
                kinds=kinds, cursor=cursor.to_json() if cursor else None, counts=counts,
                actor=SOURCE_ACTOR,
            )  # fmt: skip
            crash_point("source.before-commit")  # tests: read, not yet stored
        return Ingested(fresh, counts)

    def read_file(self, batches: int = CATCH_UP_BATCHES) -> Ingested:
        """Read the log file from the stored cursor to its end (at most `batches`). A new
        source starts at the current file's beginning: what it still holds names who made
        what the first inventory finds (rotated backups are not read)."""
        path = self.source.path
        assert path is not None
        with self.runtime.store.read() as session:
            cursor = Cursor.from_json(source_progress(session, self.source.name).cursor)
        fresh: list[PlatformEvent] = []
        total = ReadCounts()
        for _ in range(batches):
            batch = read_batch(path, cursor)
            if batch.missing:
                break
            verdicts = [read_event(line, self.source.name, self.sensitive)
                        for line in batch.lines]  # fmt: skip
            if not verdicts and batch.cursor == cursor and not batch.lost:
                return Ingested(fresh, total)
            done = self.store(verdicts, batch.cursor, lost=batch.lost)
            if batch.lost:
                logger.warning("audit log rotated away before it was read to its end",
                               extra={"source": self.source.name, "path": str(path)})  # fmt: skip
            fresh += done.events
            total = _plus(total, done.counts)
            cursor = batch.cursor
        return Ingested(fresh, total, behind=True)


def feed_errors(source: AuditSourceConfig, errors: Mapping[str, int]) -> dict[str, int]:
    """The platform's write failures of the backends this source reads (its log file:
    plugin `log`; its webhook: `webhook`)."""
    feeds = {"log"} if source.path is not None else set()
    if source.webhook_token_file is not None or source.webhook_token_credential is not None:
        feeds.add("webhook")
    return {plugin: count for plugin, count in errors.items() if plugin in feeds}


def _plus(a: ReadCounts, b: ReadCounts) -> ReadCounts:
    return ReadCounts(a.read + b.read, a.kept + b.kept, a.dropped + b.dropped,
                      a.malformed + b.malformed, a.lost + b.lost)  # fmt: skip


@dataclass
class Scope:
    """What a stack's audit source watches for it: the objects it manages, the
    namespaces it manages (its Namespace resources) and the cluster-scoped kinds."""

    stack: str
    managed: set[tuple[str, str, str, str]] = field(default_factory=set)  # (group, kind, ns, name)
    namespaces: set[str] = field(default_factory=set)
    cluster_kinds: set[tuple[str, str]] = field(default_factory=set)  # (group, kind)

    def concerns(self, event: PlatformEvent, kind: str) -> bool:
        ref = event.object
        if (ref.api_group, kind, ref.namespace or "", ref.name or "") in self.managed:
            return True
        if event.verb != "create":
            return False
        if ref.namespace:
            return ref.namespace in self.namespaces
        return (ref.api_group, kind) in self.cluster_kinds


def scopes(runtime: Runtime, source: AuditSourceConfig) -> list[Scope]:
    """Each of the source's stacks' scope, from the managed objects in the store."""
    names = [s.name for s in stacks_of(runtime.config, source)]
    with runtime.store.read() as session:
        managed = managed_objects(session, names)
    kinds = {_group_kind(text) for text in source.cluster_kinds}
    found = {name: Scope(name, cluster_kinds=kinds) for name in names}
    for stack, ref in managed:
        scope = found[stack]
        scope.managed.add(ref.key)
        if ref.kind == "Namespace" and ref.api_group == "":
            scope.namespaces.add(ref.name)
    return list(found.values())


def _group_kind(text: str) -> tuple[str, str]:
    group, _, kind = text.rpartition("/")
    return group, kind


def concerned_stacks(
    scopes_: Iterable[Scope], events: Iterable[PlatformEvent], kinds: KindIndex
) -> dict[str, list[PlatformEvent]]:
    """The people's events (not the engine's) per stack they concern."""
    found: dict[str, list[PlatformEvent]] = {}
    scope_list = list(scopes_)
    for event in events:
        if event.engine:
            continue
        kind = kinds.kind(event.object.api_group, event.object.resource)
        for scope in scope_list:
            if scope.concerns(event, kind):
                found.setdefault(scope.stack, []).append(event)
    return found


# -- attribution ------------------------------------------------------------------------


def attribute_from_platform(
    runtime: Runtime,
    stack: StackConfig,
    changes: Sequence[ResourceChange],
    refs: Mapping[str, ManagedRef],
    *,
    since: datetime | None,
    now: datetime,
    creation: bool = False,
) -> dict[str, Attribution]:
    """For each change to a platform object, the newest write by a person since `since`
    (the stack's last in-sync drift check), as the stack's audit sources recorded it (with
    `creation`: its create); with none, why the record names nobody. Changes to other
    resources get nothing here."""
    sources = sources_of(runtime.config, stack)
    if not sources:
        return {}
    found: dict[str, Attribution] = {}
    with runtime.store.read() as session:
        progress = [source_progress(session, source.name) for source in sources]
        for change in changes:
            ref = refs.get(change.urn)
            if ref is None:
                continue
            writes = writes_to(session, api_group=ref.api_group, kind=ref.kind,
                               namespace=ref.namespace, name=ref.name,
                               since=since - _SLACK if since else None)  # fmt: skip
            if creation:  # who made it: its create, else the newest write
                writes = [w for w in writes if w.verb == "create"][-1:] or writes
            found[change.urn] = (
                platform_attribution(writes[0]) if writes else _no_record(progress, now)
            )
    return found


_SLACK = timedelta(seconds=5)
# A source that stored nothing for this long while a change appeared may be behind.
BEHIND_AFTER = timedelta(minutes=5)


def _no_record(states: Sequence[SourceProgress], now: datetime) -> OutOfBandAttribution:
    """Why no audit record names the person behind a change (never a guess)."""
    if not states or all(p.updated_at is None for p in states):
        return OutOfBandAttribution("the audit source has not been read yet")
    newest = max((p.updated_at for p in states if p.updated_at), default=None)
    if newest is not None and now - newest > BEHIND_AFTER:
        return OutOfBandAttribution(f"the audit source is behind: last read {newest:%H:%M:%S}Z")
    return OutOfBandAttribution("no audit record of a write since the source started")


def platform_attribution(event: PlatformEvent) -> PlatformAttribution:
    return PlatformAttribution(
        source=event.source, event_id=event.event_id, time=event.time.isoformat(),
        verb=event.verb, user=event.user, groups=list(event.groups),
        impersonated_user=event.impersonated_user,
        impersonated_groups=list(event.impersonated_groups), user_agent=event.user_agent,
        source_ips=list(event.source_ips), field_manager=event.field_manager,
        fields=list(event.fields),
    )  # fmt: skip


# -- the check's survey of the platform --------------------------------------------------


@dataclass
class Survey:
    """What the audit sources add to a stack's drift check: the objects it manages (from
    the check's own engine events), those created beside it, and who did what."""

    refs: dict[str, ManagedRef]  # by URN
    unmanaged: list[ResourceChange] = field(default_factory=list)
    attributions: dict[str, Attribution] = field(default_factory=dict)


def survey(
    runtime: Runtime,
    stack: StackConfig,
    events: Sequence[Mapping[str, object]],
    *,
    now: datetime,
) -> Survey:
    """Read the stack's audit sources up to now, then list its scope for what no stack
    manages. A source or API server that cannot be read fails the check (a list that
    did not come back must not resolve a finding)."""
    found = Survey({ref.urn: ref for ref in managed_refs(events)})
    for source in sources_of(runtime.config, stack):
        reader = readers(runtime).get(source.name)
        if source.path is not None and reader is not None:
            reader.read_file()
        if source.inventory:
            found.unmanaged += inventory(runtime, stack, source, list(found.refs.values()))
    created = {change.urn: _unmanaged_ref(change) for change in found.unmanaged}
    found.attributions = attribute_from_platform(
        runtime, stack, found.unmanaged, created, since=None, now=now, creation=True
    )  # fmt: skip
    return found


def inventory(
    runtime: Runtime, stack: StackConfig, source: AuditSourceConfig, refs: Sequence[ManagedRef]
) -> list[ResourceChange]:
    """Objects in the stack's scope that no configured stack manages and no controller
    or engine made, each as a `create` (drift.platform.unmanaged_change)."""
    kubeconfig = kubeconfig_of(source, [stack])
    if kubeconfig is None:
        raise DriftwardenError(
            f"audit source {source.name!r}: no kubeconfig to list the stack's scope with",
            hint="set the source's kubeconfig, or KUBECONFIG in the stack's env",
        )
    api = KubeApi.from_kubeconfig(kubeconfig)
    with runtime.store.read() as session:
        others = [ref for name, ref in managed_objects(session) if name != stack.name]
    managed = {ref.key for ref in refs} | {ref.key for ref in others}
    namespaces = sorted({r.name for r in refs if (r.api_group, r.kind) == ("", "Namespace")})
    wanted: list[tuple[str, str | None]] = [(kind, None) for kind in source.cluster_kinds]
    wanted += [(kind, ns) for ns in namespaces for kind in source.namespaced_kinds]
    changes = []
    for text, namespace in wanted:
        group, kind = _group_kind(text)
        resource = api.resource_of(group, kind)
        if resource is None or resource.namespaced != (namespace is not None):
            continue  # not served here (a CRD not installed), or of the other scope
        for obj in api.list(resource, namespace):
            metadata = obj.get("metadata") or {}
            key = (group, kind, metadata.get("namespace") or "", metadata.get("name") or "")
            if key in managed or made_by_machinery(group, kind, obj):
                continue
            changes.append(unmanaged_change(resource.api_version, kind, obj))
    return changes


def _unmanaged_ref(change: ResourceChange) -> ManagedRef:
    live = change.live if isinstance(change.live, Mapping) else {}
    metadata = live.get("metadata") or {}
    _, version_part, kind = change.type.split(":")
    group, version = version_part.rsplit("/", 1)
    group = "" if group == "core" else group
    return ManagedRef(change.urn, group, f"{group}/{version}" if group else version, kind,
                      metadata.get("namespace"), str(metadata.get("name", "")))  # fmt: skip


_READERS: dict[int, dict[str, SourceReader]] = {}
_READERS_LOCK = threading.Lock()


def readers(runtime: Runtime) -> dict[str, SourceReader]:
    """The process's reader of each of its config's audit sources (one per runtime)."""
    with _READERS_LOCK:
        known = _READERS.setdefault(id(runtime), {})
        for source in runtime.config.audit_sources:
            if source.name not in known or known[source.name].source != source:
                known[source.name] = SourceReader(runtime, source)
        return known
