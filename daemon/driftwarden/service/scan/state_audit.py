"""The state's own audit trail: what every update, refresh, import, destroy or hand edit
wrote into a stack's state, property by property, rated by the risk rules.

On a file backend each update left a checkpoint in the stack's history: consecutive
checkpoints are compared (engine/checkpoints.py), and the stack's current state with the
newest checkpoint — a difference there is an edit no update accounts for (`pulumi state
delete/edit`, `pulumi stack import`, a checkpoint edited by hand). Other backends keep no
checkpoint per update: the state export is compared with the one read before (kept in the
state directory), and the newest update recorded since, if any, is named as its cause.

A refresh, import or edit that accepted a difference rated high or above raises a finding
of its own (`state`), resolved once the state no longer holds that value; and a drift
finding that vanished because the state took its value in ends `accepted`, not resolved
(store/findings.py).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftwarden.config import StackConfig
from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import (
    Attribution,
    OperationStatus,
    ResourceChange,
    Severity,
    StackUpdate,
    UpdateAttribution,
)
from driftwarden.drift.extract import state_changes
from driftwarden.drift.noise import without_noise
from driftwarden.drift.rules import assess_change, at_least
from driftwarden.engine.api import file_backend_dir
from driftwarden.engine.checkpoints import (
    Checkpoint,
    current_state,
    from_deployment,
    update_checkpoints,
)
from driftwarden.service.logs import logger
from driftwarden.service.messages.notifications import queue_for_check
from driftwarden.service.runtime import Runtime, engine_target
from driftwarden.store.findings import STATE_CHECK, accept_into_state
from driftwarden.store.state import StateChange, acceptance, audited, record_state_change
from driftwarden.store.updates import recorded_updates

# Changes of the state that take the live infrastructure's values in, not the program's:
# what they accept is a finding when it is dangerous.
ACCEPTING = frozenset({"refresh", "import", "resource-import", "edit"})
EDIT = "edit"
UNKNOWN_ACTOR = "unknown (no update accounts for it)"


@dataclass(frozen=True)
class _Seen:
    """A change of the state to audit: its key, cause, actor, time and the two states."""

    key: str
    cause: str
    actor: str
    time: datetime
    before: list[dict[str, Any]]
    after: Checkpoint


def audit_state(runtime: Runtime, stack: StackConfig, cancel: threading.Event | None = None) -> int:
    """Audit the stack's changes of the state not audited yet; how many. Never fails the
    caller: a state that cannot be read is logged, and read next time."""
    target = engine_target(stack, runtime.state)
    with runtime.store.read() as session:
        done = audited(session, stack.name)
        updates = recorded_updates(session, stack.name)
    try:
        if file_backend_dir(target.backend_url) is not None:
            seen = _from_checkpoints(runtime, stack, target, updates, done)
        else:
            seen = _from_exports(runtime, stack, updates, done, cancel)
    except DriftwardenError as exc:
        logger.warning("cannot read the stack's state", extra={"stack": stack.name,
                                                               "error": str(exc)})  # fmt: skip
        return 0
    for change in seen:
        _record(runtime, stack, change)
    if seen:
        logger.info("state changes audited", extra={"stack": stack.name, "changes": len(seen)})
    return len(seen)


def _from_checkpoints(
    runtime: Runtime, stack: StackConfig, target: Any, updates: list[StackUpdate],
    done: dict[str, str],
) -> list[_Seen]:  # fmt: skip
    """Each update not audited yet against the state audited before it (the last one
    audited, kept in the state directory: an edit between two updates is not the second
    update's doing), then the current state against the newest."""
    by_start = {(u.kind, int(u.start_time.timestamp())): u for u in updates}
    path = _snapshot_path(runtime, stack)
    kept = _load_snapshot(path)
    before: list[dict[str, Any]] = kept[1].resources if kept else []
    base = kept[1] if kept else None
    seen: list[_Seen] = []
    for checkpoint in update_checkpoints(target):
        update = by_start.get((checkpoint.kind, int(checkpoint.start_time.timestamp())))
        key = update.key if update else f"{checkpoint.kind}@{checkpoint.start_time.isoformat()}"
        if key not in done:
            seen.append(_Seen(key, checkpoint.kind, update.actor if update else "unknown",
                              update.end if update else checkpoint.start_time, before,
                              checkpoint.state))  # fmt: skip
            before, base = checkpoint.state.resources, checkpoint.state
        elif base is None or kept is None:  # audited before the snapshot was kept
            before, base = checkpoint.state.resources, checkpoint.state
    current = current_state(target)
    if (
        current is not None
        and base is not None
        and current.digest != base.digest
        and (current.digest not in done.values())
    ):
        now = datetime.now(UTC)
        seen.append(_Seen(f"{EDIT}@{now.isoformat(timespec='seconds')}", EDIT, UNKNOWN_ACTOR,
                          now, before, current))  # fmt: skip
    if current is not None and (base is None or current.digest != base.digest or seen):
        _save_snapshot(path, current)
    elif base is not None and kept is None:
        _save_snapshot(path, base)
    return seen


def _from_exports(
    runtime: Runtime, stack: StackConfig, updates: list[StackUpdate], done: dict[str, str],
    cancel: threading.Event | None,
) -> list[_Seen]:  # fmt: skip
    """Another backend: this export against the one read before (none: a baseline)."""
    path = _snapshot_path(runtime, stack)
    current = from_deployment(runtime.stack_engine(stack, cancel).export())
    previous = _load_snapshot(path)
    if previous is None or previous[1].digest == current.digest:
        _save_snapshot(path, current)
        return []
    taken, before = previous
    newer = [u for u in updates if u.end >= taken]
    now = datetime.now(UTC)
    if newer:
        update = newer[-1]
        key, cause, actor, time = update.key, update.kind, update.actor, update.end
        if key in done:  # that update's change was audited: this one is an edit after it
            key, cause, actor, time = (
                f"{EDIT}@{now.isoformat(timespec='seconds')}",
                EDIT,
                UNKNOWN_ACTOR,
                now,
            )
    else:
        key, cause, actor, time = (
            f"{EDIT}@{now.isoformat(timespec='seconds')}",
            EDIT,
            UNKNOWN_ACTOR,
            now,
        )
    _save_snapshot(path, current)
    return [_Seen(key, cause, actor, time, before.resources, current)]


def _snapshot_path(runtime: Runtime, stack: StackConfig) -> Path:
    return runtime.state.root / "state-snapshots" / f"{stack.name}.json"


def _load_snapshot(path: Path) -> tuple[datetime, Checkpoint] | None:
    try:
        data = json.loads(path.read_text())
        return datetime.fromisoformat(data["taken"]), from_deployment(
            {"resources": data["resources"]}
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_snapshot(path: Path, state: Checkpoint) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"taken": datetime.now(UTC).isoformat(), "resources": state.resources}, out)
    partial.replace(path)


def _record(runtime: Runtime, stack: StackConfig, seen: _Seen) -> None:
    config = runtime.config
    changes = without_noise(state_changes(seen.before, seen.after.resources,
                                          stack.sensitive_paths), config.noise_rules())  # fmt: skip
    rules = config.risk_rules()
    ratings = {}
    accepted = []
    for change in changes:
        # A secret whose ciphertext changed may be the same value re-encrypted (a refresh
        # re-encrypts): without the passphrase the two cannot be told apart, so it is
        # recorded, not rated. A drift check compares the values themselves.
        rated = replace(
            change,
            properties=tuple(p for p in change.properties if not (p.secret and p.kind == "update")),
        )
        if change.properties and not rated.properties:
            continue
        for path, rating in assess_change(rules, rated).items():
            ratings[(change.urn, path)] = (rating.severity.value, rating.title)
            if seen.cause in ACCEPTING and at_least(rating.severity, Severity.HIGH):
                prop = next((p for p in change.properties if p.path == path), None)
                if prop is not None and prop.actual is not None:
                    accepted.append((change, prop, rating.severity.value, rating.title))
    record = StateChange(seen.key, seen.cause, seen.actor, seen.time, seen.after.digest,
                         changes, ratings)  # fmt: skip
    with runtime.store.write() as session:
        rows = record_state_change(session, runtime.store.audit, stack.name, record)
        held = _held(changes)
        attribution: Attribution = (
            acceptance(rows[0]) if rows else UpdateAttribution(seen.key, seen.cause, seen.actor,
                                                               "succeeded", None, None)
        )  # fmt: skip
        transitions = accept_into_state(
            session, runtime.store.audit, stack=stack.name, change_key=seen.key, time=seen.time,
            accepted=accepted, held=held, attribution=attribution, actor=seen.actor,
        )  # fmt: skip
        if transitions:
            queue_for_check(session, config, stack, check=STATE_CHECK, operation_id=seen.key,
                            status=OperationStatus.SUCCEEDED, transitions=transitions,
                            error=None)  # fmt: skip


def _held(changes: list[ResourceChange]) -> dict[tuple[str, str], Any]:
    """What the state holds after the change at each (urn, path) it touched (a deleted
    resource: nothing, at any path of it)."""
    held: dict[tuple[str, str], Any] = {}
    for change in changes:
        if str(change.change) == "delete":
            held[(change.urn, "*")] = None
        for prop in change.properties:
            held[(change.urn, prop.path)] = prop.actual
    return held
