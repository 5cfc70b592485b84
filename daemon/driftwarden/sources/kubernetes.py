"""The Kubernetes API server's audit events (`audit.k8s.io/v1` Event), read into
PlatformEvents: what is kept, what the built-in profile drops, what is redacted. Pure.

Kept: completed writes (create, update, patch, delete, deletecollection) answered with a
2xx status. Dropped by the profile (measured on scripts/kube-cluster, see the README):
reads and watches, the API server's and the controllers' own writes (the controller
manager, its per-controller service accounts in kube-system, the scheduler, nodes),
and the kinds only machinery writes (events, leases, endpoints, endpoint slices, token
and access reviews). Redacted before anything is stored: a Secret's body entirely, the
bodies of token requests and reviews, any `sensitive_paths` value, and bodies larger
than BODY_LIMIT (their fields are kept).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from driftwarden.domain.model import REDACTED
from driftwarden.domain.platform import ObjectRef, PlatformEvent
from driftwarden.drift.propertypath import covers, format_path

WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# A body larger than this (as JSON) is not stored; its fields still are.
BODY_LIMIT = 64 * 1024
FIELD_LIMIT = 50

# Identities of the platform's own machinery: never a person.
_MACHINE_USERS = frozenset({
    "system:apiserver", "system:kube-controller-manager", "system:kube-scheduler",
    "system:kube-proxy", "system:serviceaccount:kube-system:generic-garbage-collector",
})  # fmt: skip
_MACHINE_USER_PREFIXES = ("system:serviceaccount:kube-system:", "system:node:")
_MACHINE_GROUPS = frozenset({"system:nodes"})
# (group, resource) only machinery writes, or whose writes say nothing about drift.
_MACHINE_RESOURCES = frozenset({
    ("", "events"), ("events.k8s.io", "events"), ("coordination.k8s.io", "leases"),
    ("", "endpoints"), ("discovery.k8s.io", "endpointslices"),
    ("authentication.k8s.io", "tokenreviews"), ("authentication.k8s.io", "selfsubjectreviews"),
    ("authorization.k8s.io", "subjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("authorization.k8s.io", "localsubjectaccessreviews"),
})  # fmt: skip
# Bodies never stored: they carry credentials.
_SECRET_BODIES = frozenset({("", "secrets")})
_SECRET_SUBRESOURCES = frozenset({"token"})
# How the engine (Pulumi's Kubernetes provider) shows itself.
ENGINE_USER_AGENT = "pulumi-kubernetes/"
ENGINE_FIELD_MANAGER = "pulumi-kubernetes"


@dataclass(frozen=True)
class Verdict:
    """What became of one line: its event, or why it was not kept."""

    event: PlatformEvent | None
    dropped: str | None = None  # "read", "failed", "machinery", "malformed", "incomplete"


def read_event(raw: Mapping[str, Any] | str, source: str, sensitive: Sequence[str] = ()) -> Verdict:
    """One audit event (a parsed object or a JSON line) as a kept PlatformEvent, or why
    it is dropped. Never raises on bad input."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return Verdict(None, "malformed")
    if not isinstance(raw, Mapping) or raw.get("kind") not in (None, "Event"):
        return Verdict(None, "malformed")
    try:
        return _read(raw, source, sensitive)
    except (KeyError, TypeError, ValueError, AttributeError):
        return Verdict(None, "malformed")


def _read(raw: Mapping[str, Any], source: str, sensitive: Sequence[str]) -> Verdict:
    verb = raw.get("verb")
    ref = _object_ref(raw)
    if not raw.get("auditID") or not isinstance(raw.get("user"), Mapping):
        return Verdict(None, "malformed")
    if verb not in WRITES:
        return Verdict(None, "read")
    if ref is None:
        return Verdict(None, "malformed")
    if raw.get("stage", "ResponseComplete") != "ResponseComplete":
        return Verdict(None, "incomplete")
    status = int((raw.get("responseStatus") or {}).get("code") or 0)
    if not 200 <= status < 300:
        return Verdict(None, "failed")
    user = raw["user"]
    name = str(user.get("username") or "")
    groups = tuple(str(g) for g in user.get("groups") or ())
    impersonated = raw.get("impersonatedUser") or {}
    as_user = str(impersonated["username"]) if impersonated.get("username") else None
    if _machinery(as_user or name, groups, ref):
        return Verdict(None, "machinery")
    field_manager = _field_manager(str(raw.get("requestURI") or ""))
    body = raw.get("requestObject")
    body = None if _secret(ref) else _redacted(body, sensitive)
    fields = _fields(body)
    if body is not None and len(json.dumps(body, default=str)) > BODY_LIMIT:
        body = None
    return Verdict(PlatformEvent(
        source=source,
        event_id=str(raw["auditID"]),
        time=_timestamp(raw.get("stageTimestamp") or raw["requestReceivedTimestamp"]),
        verb=str(verb),
        user=name,
        groups=groups,
        user_agent=str(raw.get("userAgent") or ""),
        source_ips=tuple(str(ip) for ip in raw.get("sourceIPs") or ()),
        object=ref,
        status=status,
        impersonated_user=as_user,
        impersonated_groups=tuple(str(g) for g in impersonated.get("groups") or ()),
        field_manager=field_manager,
        fields=fields,
        body=body,
        engine=_engine(str(raw.get("userAgent") or ""), field_manager),
    ))  # fmt: skip


def _object_ref(raw: Mapping[str, Any]) -> ObjectRef | None:
    ref = raw.get("objectRef")
    if not isinstance(ref, Mapping) or not ref.get("resource"):
        return None
    name = ref.get("name")
    if not name:  # a create names its object in the response (pods of a ReplicaSet)
        response = raw.get("responseObject")
        if isinstance(response, Mapping):
            name = (response.get("metadata") or {}).get("name")
    return ObjectRef(
        api_group=str(ref.get("apiGroup") or ""),
        resource=str(ref["resource"]),
        namespace=str(ref["namespace"]) if ref.get("namespace") else None,
        name=str(name) if name else None,
        api_version=str(ref["apiVersion"]) if ref.get("apiVersion") else None,
        subresource=str(ref["subresource"]) if ref.get("subresource") else None,
    )


def _machinery(user: str, groups: Iterable[str], ref: ObjectRef) -> bool:
    return (
        user in _MACHINE_USERS
        or user.startswith(_MACHINE_USER_PREFIXES)
        or any(group in _MACHINE_GROUPS for group in groups)
        or (ref.api_group, ref.resource) in _MACHINE_RESOURCES
    )


def _secret(ref: ObjectRef) -> bool:
    return (ref.api_group, ref.resource) in _SECRET_BODIES or (
        ref.subresource in _SECRET_SUBRESOURCES
    )


def _engine(user_agent: str, field_manager: str | None) -> bool:
    """Written by Pulumi's Kubernetes provider (any stack's engine), not by a person."""
    return user_agent.startswith(ENGINE_USER_AGENT) or (field_manager or "").startswith(
        ENGINE_FIELD_MANAGER
    )


def _field_manager(request_uri: str) -> str | None:
    managers = parse_qs(urlsplit(request_uri).query).get("fieldManager")
    return managers[0] if managers else None


def _timestamp(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _redacted(body: Any, sensitive: Sequence[str]) -> Any:
    """`body` with every value under a `sensitive_paths` glob replaced by REDACTED."""
    if body is None or not sensitive:
        return body

    def walk(value: Any, prefix: list[str | int]) -> Any:
        if prefix and covers(sensitive, format_path(prefix)):
            return REDACTED
        if isinstance(value, Mapping):
            return {key: walk(item, [*prefix, str(key)]) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, [*prefix, index]) for index, item in enumerate(value)]
        return value

    return walk(body, [])


def _fields(body: Any) -> tuple[str, ...]:
    """The top-level and second-level fields a request body sets (`spec.ports`)."""
    if not isinstance(body, Mapping):
        return ()
    found: list[str] = []
    for key, value in body.items():
        if key in ("apiVersion", "kind"):
            continue
        if value is None:
            continue  # kubectl sends `creationTimestamp: null`: nothing set
        if isinstance(value, Mapping) and value:
            found += [format_path([str(key), str(inner)]) for inner, item in value.items()
                      if item is not None]  # fmt: skip
        else:
            found.append(format_path([str(key)]))
    return tuple(found[:FIELD_LIMIT])


def read_event_list(
    document: Mapping[str, Any], source: str, sensitive: Sequence[str] = ()
) -> list[Verdict]:
    """An `EventList` as the audit webhook posts it."""
    items = document.get("items")
    if document.get("kind") != "EventList" or not isinstance(items, list):
        raise ValueError("not an audit.k8s.io EventList")
    return [read_event(item, source, sensitive) for item in items]
