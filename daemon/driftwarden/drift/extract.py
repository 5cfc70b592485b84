"""From the engine's event stream to SPEC.md's change records. Pure: no I/O.

Events are the engine's own JSON (`resourcePreEvent`, `resOutputsEvent`, …), as written
by `--event-log` and as delivered to the Automation API's `on_event`. The resulting
operation of a step is on its `resOutputsEvent` (a refresh's pre-event always says
`refresh`). Property paths come from `detailedDiff` when the provider filled it; else
they are computed from the old and new inputs, and from the outputs as a last resort.
Drift checks also look past the provider's diff (see `extract_changes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from driftwarden.domain.model import (
    REDACTED,
    STATE_SOURCE,
    ChangeKind,
    DifferenceSource,
    DiffKind,
    PropertyChange,
    ResourceChange,
    urn_name,
)
from driftwarden.drift.propertypath import (
    Segment,
    covers,
    format_path,
    is_missing,
    overlaps,
    parse_path,
    resolve,
)

# Pulumi's secret signature: secrets arrive blinded as {SIG: SECRET, "ciphertext": …}.
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"

STEP_EVENTS = ("resourcePreEvent", "resOutputsEvent")
# Engine step op -> SPEC.md change. Anything else (same, refresh, read, …) is no change.
CHANGE_OF_OP = {
    "update": ChangeKind.UPDATE,
    "delete": ChangeKind.DELETE,
    "create": ChangeKind.CREATE,
    "replace": ChangeKind.REPLACE,
    "create-replacement": ChangeKind.REPLACE,
    "delete-replaced": ChangeKind.REPLACE,
}
# Refresh results (on the resOutputsEvent) whose outputs are compared with the state's.
_REFRESHED_OPS = ("same", "update")
# The steps of one replacement: the `replace` step carries old, new and the keys.
_OP_PRIORITY = {"replace": 3, "create-replacement": 2, "delete-replaced": 1}
# Keys the SDKs and providers add for their own bookkeeping: the dynamic provider's pickle,
# and the Kubernetes provider's copy of its inputs, field manager and first API version.
_INTERNAL_KEYS = frozenset(
    {"__provider", "__defaults", "__meta", "__inputs", "__fieldManager", "__initialApiVersion"}
)
_ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG_VALUE


def contains_secret(value: Any) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(contains_secret(item) for item in value.values())
    if isinstance(value, list):
        return any(contains_secret(item) for item in value)
    return False


def step_metadata(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for key in STEP_EVENTS:
        payload = event.get(key)
        if isinstance(payload, Mapping):
            metadata = payload.get("metadata")
            if isinstance(metadata, Mapping):
                return metadata
    return None


def stack_was_deployed(events: Iterable[Mapping[str, Any]]) -> bool:
    """True when the stack's root resource exists in the state (an `old` side was seen)."""
    for event in events:
        metadata = step_metadata(event)
        if metadata and metadata.get("type") == _ROOT_STACK_TYPE and metadata.get("old"):
            return True
    return False


def extract_changes(
    events: Iterable[Mapping[str, Any]],
    sensitive_paths: Sequence[str] = (),
    *,
    compare_outputs: bool = False,
) -> list[ResourceChange]:
    """The resources that differ, ordered by URN (the engine's order varies run to run).

    With `compare_outputs` (refreshes), every refreshed resource's live outputs are also
    compared with its state outputs and with the lists its program set, and what the
    provider's diff left out is reported with source `outputs`: the Kubernetes provider,
    for one, prunes live lists to the program's length before it diffs, so items appended
    to an RBAC rule or a binding's subjects never reach its diff. Server-managed noise is
    removed later (`driftwarden.drift.noise`), not here.
    """
    steps: dict[str, Mapping[str, Any]] = {}
    refreshed: dict[str, Mapping[str, Any]] = {}
    for event in events:
        metadata = step_metadata(event)
        if metadata is None or _is_implicit(metadata):
            continue
        op = metadata.get("op")
        urn = str(metadata.get("urn", ""))
        if compare_outputs and "resOutputsEvent" in event and op in _REFRESHED_OPS:
            refreshed[urn] = metadata
        if op not in CHANGE_OF_OP:
            continue
        previous = steps.get(urn)
        if previous is None or _OP_PRIORITY.get(str(op), 0) >= _OP_PRIORITY.get(
            str(previous["op"]), 0
        ):
            steps[urn] = metadata
    changes = {urn: _resource_change(steps[urn], sensitive_paths) for urn in steps}
    for urn, metadata in refreshed.items():
        change = changes.get(urn)
        if change is not None and change.change != ChangeKind.UPDATE:
            continue
        covered = [parse_path(prop.path) for prop in change.properties] if change else []
        extra = _outputs_changes(metadata, sensitive_paths, covered)
        if not extra:
            continue
        if change is None:
            change = ResourceChange(
                urn=urn, type=str(metadata.get("type", "")), change=ChangeKind.UPDATE
            )
        changes[urn] = replace(change, properties=(*change.properties, *extra))
    return [
        replace(changes[urn], live=_live(refreshed.get(urn) or steps[urn]))
        for urn in sorted(changes)
    ]


def _live(metadata: Mapping[str, Any]) -> Any:
    """The resource's refreshed (or planned) outputs, for rules about the whole resource."""
    outputs = (metadata.get("new") or {}).get("outputs")
    return _public(outputs) if isinstance(outputs, dict) else None


def _outputs_changes(
    metadata: Mapping[str, Any], sensitive: Sequence[str], covered: Sequence[list[Segment]]
) -> list[PropertyChange]:
    """What the live object has that the provider's diff did not report:

    - state outputs vs refreshed outputs: every value that changed since the state was
      last written (list items, map keys, nested values);
    - the program's inputs vs refreshed outputs, for lists: items the live object has and
      the program never asked for. A refresh (`up --refresh`, `pulumi refresh`) copies the
      live object into the state's outputs, so the first comparison goes blind to what it
      absorbed; the program's inputs do not change, so an appended RBAC subject stays
      visible until it is removed or written into the program.
    """
    old = metadata.get("old") or {}
    outputs = old.get("outputs")
    live = (metadata.get("new") or {}).get("outputs")
    if not isinstance(outputs, dict) or not isinstance(live, dict):
        return []
    seen = list(covered)
    found = []
    for path, kind in _diff(_public(outputs), _public(live), []):
        if not any(overlaps(path, other) for other in seen):
            seen.append(path)
            found.append(_property_change(path, kind, outputs, live, sensitive))
    for path in _unrequested_items(_public(old.get("inputs")), _public(live), []):
        if not any(overlaps(path, other) for other in seen):
            seen.append(path)
            found.append(_property_change(path, DiffKind.ADD, {}, live, sensitive))
    return [replace(change, source=DifferenceSource.OUTPUTS) for change in found]


def _unrequested_items(desired: Any, live: Any, prefix: list[Segment]) -> Iterator[list[Segment]]:
    """Paths of list items in `live` that no item of the same list in `desired` accounts
    for (an input item accounts for a live one when all it says is there: the server adds
    defaults). Only where the program set the list: server-side lists are not its."""
    if isinstance(desired, dict) and isinstance(live, dict):
        if is_secret(desired) or is_secret(live):
            return
        for key in desired:
            if key in live:
                yield from _unrequested_items(desired[key], live[key], [*prefix, key])
    elif isinstance(desired, list) and isinstance(live, list):
        unused = list(range(len(desired)))
        for index, item in enumerate(live):
            # The item at the same position first: lists rarely move.
            order = sorted(unused, key=lambda candidate: candidate != index)
            match = next((j for j in order if _accounts_for(desired[j], item)), None)
            if match is None:
                yield [*prefix, index]
            else:
                unused.remove(match)
                yield from _unrequested_items(desired[match], item, [*prefix, index])


def _accounts_for(desired: Any, live: Any) -> bool:
    """True when everything `desired` says holds in `live` (which may say more)."""
    if is_secret(desired) or is_secret(live):
        return True  # blinded: the provider's diff compares these, not us
    if isinstance(desired, dict) and isinstance(live, dict):
        return all(
            key in live and _accounts_for(value, live[key]) for key, value in desired.items()
        )
    if isinstance(desired, list) and isinstance(live, list):
        unused = list(live)
        for item in desired:
            match = next((other for other in unused if _accounts_for(item, other)), None)
            if match is None:
                return False
            unused.remove(match)
        return True
    return bool(desired == live)


def _is_implicit(metadata: Mapping[str, Any]) -> bool:
    """The root stack and default providers are the engine's, not the user's resources."""
    kind = str(metadata.get("type", ""))
    if kind == _ROOT_STACK_TYPE:
        return True
    name = urn_name(str(metadata.get("urn", "")))
    return kind.startswith("pulumi:providers:") and name.startswith("default")


def _resource_change(metadata: Mapping[str, Any], sensitive: Sequence[str]) -> ResourceChange:
    change = CHANGE_OF_OP[str(metadata["op"])]
    properties: tuple[PropertyChange, ...] = ()
    if change in (ChangeKind.UPDATE, ChangeKind.REPLACE):
        properties = tuple(_property_changes(metadata, sensitive))
    return ResourceChange(
        urn=str(metadata["urn"]),
        type=str(metadata.get("type", "")),
        change=change,
        properties=properties,
    )


def _property_changes(
    metadata: Mapping[str, Any], sensitive: Sequence[str]
) -> list[PropertyChange]:
    old = metadata.get("old") or {}
    new = metadata.get("new") or {}
    replace_keys = set(metadata.get("keys") or ())
    detailed = metadata.get("detailedDiff")

    # (path, kind, where the old value is, where the new value is)
    found: list[tuple[list[Segment], DiffKind, str, str]] = []
    if detailed:
        for path, diff in detailed.items():
            # inputDiff: old inputs vs new inputs; otherwise old state (outputs) vs new inputs.
            old_source = "inputs" if diff.get("inputDiff") else "outputs"
            found.append((parse_path(path), _diff_kind(diff), old_source, "inputs"))
    else:
        for source in ("inputs", "outputs"):
            diffs = list(_diff(_public(old.get(source)), _public(new.get(source)), []))
            top_level = set(metadata.get("diffs") or ())
            if top_level:
                narrowed = [d for d in diffs if d[0] and d[0][0] in top_level]
                diffs = narrowed or diffs
            if diffs:
                found = [(path, kind, source, source) for path, kind in diffs]
                break

    changes = []
    for segments, diff_kind, old_source, new_source in found:
        kind = diff_kind
        if replace_keys and segments and segments[0] in replace_keys:
            kind = kind.replacing
        new_value = new.get(new_source)
        deleted = kind in (DiffKind.DELETE, DiffKind.DELETE_REPLACE)
        if is_missing(resolve(new_value, segments)) and not deleted:
            new_value = new.get("outputs")
        changes.append(_property_change(segments, kind, old.get(old_source), new_value, sensitive))
    if not changes:
        # The provider says the resource changed, yet no visible value differs: only a
        # blinded secret can hide the difference. Name those paths, values redacted.
        for segments in _secret_paths(_public(new.get("inputs") or new.get("outputs"))):
            kind = DiffKind.UPDATE_REPLACE if segments[0] in replace_keys else DiffKind.UPDATE
            changes.append(PropertyChange(format_path(segments), kind, REDACTED, REDACTED, True))
    return changes


def _diff_kind(diff: Mapping[str, Any]) -> DiffKind:
    """A detailed diff's kind. Pulumi's are the six DiffKinds; anything else it may say
    one day counts as an update (a difference is never dropped for its kind)."""
    try:
        return DiffKind(str(diff.get("diffKind", DiffKind.UPDATE)))
    except ValueError:
        return DiffKind.UPDATE


def _public(value: Any) -> Any:
    if isinstance(value, dict) and not is_secret(value):
        return {key: item for key, item in value.items() if key not in _INTERNAL_KEYS}
    return value if value is not None else {}


def _property_change(
    segments: list[Segment], kind: DiffKind, old: Any, new: Any, sensitive: Sequence[str]
) -> PropertyChange:
    path = format_path(segments)
    expected = resolve(old, segments)
    actual = resolve(new, segments)
    secret = (
        _under_secret(old, segments)
        or _under_secret(new, segments)
        or contains_secret(expected)
        or contains_secret(actual)
        or covers(sensitive, path)
    )
    if secret:
        return PropertyChange(path, kind, REDACTED, REDACTED, True)
    return PropertyChange(
        path,
        kind,
        None if is_missing(expected) else expected,
        None if is_missing(actual) else actual,
        False,
    )


def _under_secret(value: Any, segments: list[Segment]) -> bool:
    """True when the path, or any of its parents, is a blinded secret in `value`."""
    current = value
    for segment in segments:
        if is_secret(current):
            return True
        if isinstance(segment, int) and isinstance(current, list) and 0 <= segment < len(current):
            current = current[segment]
        elif isinstance(segment, str) and isinstance(current, dict) and segment in current:
            current = current[segment]
        else:
            return False
    return is_secret(current)


def _diff(old: Any, new: Any, prefix: list[Segment]) -> Iterator[tuple[list[Segment], DiffKind]]:
    """Leaf-level differences between two property values, as (path, kind)."""
    if (
        isinstance(old, dict)
        and isinstance(new, dict)
        and not is_secret(old)
        and not is_secret(new)
    ):
        for key in sorted(old.keys() | new.keys()):
            if key not in old:
                yield [*prefix, key], DiffKind.ADD
            elif key not in new:
                yield [*prefix, key], DiffKind.DELETE
            else:
                yield from _diff(old[key], new[key], [*prefix, key])
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            if index >= len(old):
                yield [*prefix, index], DiffKind.ADD
            elif index >= len(new):
                yield [*prefix, index], DiffKind.DELETE
            else:
                yield from _diff(old[index], new[index], [*prefix, index])
    elif old != new:
        yield prefix, DiffKind.UPDATE


def _secret_paths(value: Any, prefix: list[Segment] | None = None) -> Iterator[list[Segment]]:
    prefix = prefix or []
    if is_secret(value):
        if prefix:
            yield prefix
    elif isinstance(value, dict):
        for key in sorted(value):
            yield from _secret_paths(value[key], [*prefix, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secret_paths(item, [*prefix, index])


def state_changes(
    before: Iterable[Mapping[str, Any]],
    after: Iterable[Mapping[str, Any]],
    sensitive_paths: Sequence[str] = (),
) -> list[ResourceChange]:
    """What changed between two states' resources (checkpoints or exports): resources
    created, deleted, replaced (a new id) and, per resource, each output path old → new,
    secrets and `sensitive_paths` redacted as findings are. Providers are left out: their
    outputs are the engine's bookkeeping."""
    old = {str(r.get("urn")): r for r in before if not _is_provider(r)}
    new = {str(r.get("urn")): r for r in after if not _is_provider(r)}
    changes = []
    for urn in sorted(old.keys() | new.keys()):
        was, now = old.get(urn), new.get(urn)
        resource_type = str((now or was or {}).get("type", ""))
        if was is None:  # the whole object, as the state now has it: rated by its fields
            assert now is not None
            outputs = _blinded(_public(now.get("outputs")), sensitive_paths, [])
            whole = PropertyChange("", DiffKind.ADD.value, None, outputs, False, STATE_SOURCE)
            changes.append(ResourceChange(urn, resource_type, ChangeKind.CREATE, (whole,),
                                          live=outputs))  # fmt: skip
            continue
        if now is None:
            changes.append(ResourceChange(urn, resource_type, ChangeKind.DELETE))
            continue
        before_outputs, after_outputs = _public(was.get("outputs")), _public(now.get("outputs"))
        properties = tuple(
            _property_change(segments, kind, before_outputs, after_outputs, sensitive_paths)
            for segments, kind in _diff(before_outputs, after_outputs, [])
        )  # fmt: skip
        replaced = was.get("id") != now.get("id") and bool(was.get("id"))
        if properties or replaced:
            kind = ChangeKind.REPLACE if replaced else ChangeKind.UPDATE
            live = _blinded(after_outputs, sensitive_paths, [])  # what `resource_contains` reads
            changes.append(ResourceChange(urn, resource_type, kind, properties, live=live))
    return changes


def _blinded(value: Any, sensitive: Sequence[str], segments: list[Segment]) -> Any:
    """`value` with every secret and every value under a `sensitive_paths` glob REDACTED
    (the rest kept: a created object is rated by its fields)."""
    if is_secret(value) or (segments and covers(sensitive, format_path(segments))):
        return REDACTED
    if isinstance(value, dict):
        return {k: _blinded(v, sensitive, [*segments, k]) for k, v in value.items()}
    if isinstance(value, list):
        return [_blinded(v, sensitive, [*segments, i]) for i, v in enumerate(value)]
    return value


def _is_provider(resource: Mapping[str, Any]) -> bool:
    return str(resource.get("type", "")).startswith("pulumi:providers:")
