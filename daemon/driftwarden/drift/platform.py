"""Platform objects and stacks. What a drift check's engine events say about the objects
a stack manages (Kubernetes: group, version, kind, namespace and name of each resource in
the state), for audit events to find their stack; and an object no stack manages, found
in a stack's scope, as a difference of its own. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from driftwarden.domain.model import (
    REDACTED,
    STATE_SOURCE,
    ChangeKind,
    DifferenceSource,
    DiffKind,
    PropertyChange,
    ResourceChange,
)
from driftwarden.domain.platform import ManagedRef, kubernetes_type
from driftwarden.drift.propertypath import Segment, format_path

_KUBERNETES = "kubernetes:"


def managed_refs(events: Iterable[Mapping[str, Any]]) -> list[ManagedRef]:
    """Every Kubernetes object in the state the check read (deleted ones too: the state
    still says the stack manages them)."""
    found: dict[str, ManagedRef] = {}
    for event in events:
        metadata = (event.get("resourcePreEvent") or {}).get("metadata")
        if not isinstance(metadata, Mapping):
            continue
        ref = kubernetes_ref(str(metadata.get("type", "")), str(metadata.get("urn", "")),
                             metadata.get("old") or metadata.get("new"))  # fmt: skip
        if ref is not None:
            found[ref.urn] = ref
    return list(found.values())


def kubernetes_ref(type_token: str, urn: str, state: Any) -> ManagedRef | None:
    """A Kubernetes resource of the state as a ManagedRef (None for anything else:
    components, providers, other clouds, an object without a name yet)."""
    if not type_token.startswith(_KUBERNETES) or not isinstance(state, Mapping):
        return None
    parts = type_token.split(":")
    if len(parts) != 3 or "/" not in parts[1]:
        return None
    group, version = parts[1].rsplit("/", 1)
    outputs = state.get("outputs") or {}
    metadata = outputs.get("metadata") if isinstance(outputs, Mapping) else None
    if not isinstance(metadata, Mapping) or not metadata.get("name"):
        return None
    group = "" if group == "core" else group
    namespace = metadata.get("namespace")
    return ManagedRef(
        urn=urn,
        api_group=group,
        api_version=f"{group}/{version}" if group else version,
        kind=parts[2],
        namespace=str(namespace) if namespace else None,
        name=str(metadata["name"]),
    )


# What the API server sets on every object: not what the person who created it said.
_SERVER_FIELDS = ("status",)
_SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp",
                    "generation", "selfLink")  # fmt: skip
# Controllers make these in every namespace; they are nobody's doing.
_MACHINE_MADE = {("", "ServiceAccount", "default"), ("", "ConfigMap", "kube-root-ca.crt")}
_ENGINE_MANAGER = "pulumi-kubernetes"
# How many fields of an unmanaged object the risk rules read at most.
PROPERTY_LIMIT = 500
INVENTORY_SOURCE = DifferenceSource.INVENTORY


def unmanaged_urn(api_version: str, kind: str, namespace: str | None, name: str) -> str:
    """The identity of an object no stack manages (no URN of Pulumi's): its type token
    and `namespace/name`, which is what tables show as its name."""
    where = f"{namespace}/{name}" if namespace else name
    return f"unmanaged::{kubernetes_type(api_version, kind)}::{where}"


def made_by_machinery(api_group: str, kind: str, obj: Mapping[str, Any]) -> bool:
    """Made by the platform itself (the API server's default roles and bindings), by a
    controller (it has an owner; a namespace's default ServiceAccount and CA bundle; a
    service account token) or by a stack's engine (its field manager)."""
    metadata = obj.get("metadata") or {}
    if metadata.get("ownerReferences"):
        return True
    if (metadata.get("labels") or {}).get("kubernetes.io/bootstrapping") == "rbac-defaults":
        return True
    if (api_group, kind, metadata.get("name")) in _MACHINE_MADE:
        return True
    if kind == "Secret" and obj.get("type") == "kubernetes.io/service-account-token":
        return True
    managers = [entry.get("manager", "") for entry in metadata.get("managedFields") or ()]
    return any(str(manager).startswith(_ENGINE_MANAGER) for manager in managers)


def unmanaged_change(api_version: str, kind: str, obj: Mapping[str, Any]) -> ResourceChange:
    """An object found in a stack's scope that no stack manages: a `create` of the whole
    object, one finding, whose value is the object as its author wrote it (server fields
    dropped, a Secret's values redacted). The risk rules rate it by its fields
    (`unmanaged_fields`)."""
    metadata = obj.get("metadata") or {}
    written = {
        key: value for key, value in obj.items()
        if key not in _SERVER_FIELDS and key not in ("apiVersion", "kind")
    }  # fmt: skip
    written["metadata"] = {k: v for k, v in metadata.items() if k not in _SERVER_METADATA}
    if kind == "Secret" and api_version == "v1":
        for key in ("data", "stringData"):
            if isinstance(written.get(key), Mapping):
                written[key] = dict.fromkeys(written[key], REDACTED)
    # What it is first (its name is the finding's resource); its labels last.
    shown = {key: value for key, value in written.items() if key != "metadata"}
    marks = {k: v for k, v in written["metadata"].items() if k in ("labels", "annotations")}
    if marks:
        shown["metadata"] = marks
    return ResourceChange(
        urn=unmanaged_urn(api_version, kind, metadata.get("namespace"), str(metadata["name"])),
        type=kubernetes_type(api_version, kind),
        change=ChangeKind.CREATE,
        properties=(PropertyChange("", DiffKind.ADD.value, None, shown, False, INVENTORY_SOURCE),),
        live=written,
    )


def unmanaged_fields(change: ResourceChange) -> list[PropertyChange]:
    """The fields of an unmanaged object (`roleRef.name`, `subjects[0].name`), each as
    added: what the risk rules read to rate it (a redacted value is a secret one)."""
    fields = []
    for segments, value in _leaves(change.live, []):
        fields.append(PropertyChange(format_path(segments), DiffKind.ADD.value, None, value,
                                     value == REDACTED, INVENTORY_SOURCE))  # fmt: skip
        if len(fields) == PROPERTY_LIMIT:
            break
    return fields


def is_whole_object(change: ResourceChange) -> bool:
    """A created object shown whole (an unmanaged one, or one a change of the state
    created): rated by its fields (`unmanaged_fields`)."""
    return change.change == ChangeKind.CREATE and any(
        prop.source in (INVENTORY_SOURCE, STATE_SOURCE) and prop.path == ""
        for prop in change.properties
    )


def _leaves(value: Any, prefix: list[Segment]) -> Iterator[tuple[list[Segment], Any]]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _leaves(item, [*prefix, str(key)])
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, [*prefix, index])
    elif prefix:
        yield prefix, value
