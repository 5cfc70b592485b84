"""What a platform's own audit record says happened: one write to one object, by whom.

An audit source (the Kubernetes API server's audit log or webhook) is read into these,
whatever its wire format; attribution, event-driven checks and unmanaged objects use
only this. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ObjectRef:
    """The object a request wrote: its API group ("" for the core group), resource
    (plural, as in the URL), namespace (None: cluster-scoped) and name."""

    api_group: str
    resource: str
    namespace: str | None
    name: str | None
    api_version: str | None = None
    subresource: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(group, resource, namespace, name): how events and managed objects meet."""
        return (self.api_group, self.resource, self.namespace or "", self.name or "")

    def describe(self) -> str:
        group = f".{self.api_group}" if self.api_group else ""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.resource}{group} {where}{self.name or '?'}"


@dataclass(frozen=True)
class PlatformEvent:
    """One completed write, as the platform recorded it (secrets already redacted)."""

    source: str  # the [[audit_sources]] entry it came from
    event_id: str  # the platform's own id (Kubernetes: auditID)
    time: datetime  # when the platform completed it (UTC)
    verb: str  # create | update | patch | delete | deletecollection
    user: str
    groups: tuple[str, ...]
    user_agent: str
    source_ips: tuple[str, ...]
    object: ObjectRef
    status: int
    impersonated_user: str | None = None
    impersonated_groups: tuple[str, ...] = ()
    field_manager: str | None = None
    # Top-level and second-level fields the request body set, where the event has it.
    fields: tuple[str, ...] = ()
    # The request's object (redacted; None at Metadata level or when too large).
    body: Any = field(default=None, compare=False)
    engine: bool = False  # written by a stack's engine (Pulumi's provider), not a person

    @property
    def actor(self) -> str:
        """The identity the platform authorized: the impersonated one if any."""
        return self.impersonated_user or self.user

    @property
    def people(self) -> str:
        """`mallory`, or `admin as mallory` when impersonated."""
        if self.impersonated_user:
            return f"{self.user} as {self.impersonated_user}"
        return self.user


@dataclass(frozen=True)
class ManagedRef:
    """A platform object a stack manages: its URN in the stack and where it lives."""

    urn: str
    api_group: str  # "" for the core group
    api_version: str  # v1, apps/v1, …
    kind: str
    namespace: str | None
    name: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(group, kind, namespace, name): how events and managed objects meet."""
        return (self.api_group, self.kind, self.namespace or "", self.name)


def kubernetes_type(api_version: str, kind: str) -> str:
    """The Pulumi type token of a Kubernetes kind: `kubernetes:apps/v1:Deployment`,
    `kubernetes:core/v1:ConfigMap` (Pulumi names the core group `core`)."""
    return f"kubernetes:{api_version if '/' in api_version else 'core/' + api_version}:{kind}"
