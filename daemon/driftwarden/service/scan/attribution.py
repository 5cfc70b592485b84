"""Who or what caused a difference.

Drift: was a Pulumi update recorded (history ingestion) between the last drift check
that saw the stack in sync and now, and did it write that resource (the state's
`modified` time falls inside the update)? Then that update, its actor and result. A
failed update in that window is named too: a half-applied update is the classic cause
of drift. Otherwise the resource changed outside Pulumi: `out_of_band`.

Pending code changes: the newest git commit touching the project directory.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from driftwarden.config import StackConfig
from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import (
    Attribution,
    Check,
    CommitAttribution,
    OutOfBandAttribution,
    PlatformAttribution,
    ResourceChange,
    StackUpdate,
    UnknownAttribution,
    UpdateAttribution,
)
from driftwarden.domain.platform import ManagedRef
from driftwarden.drift.lifecycle import observations
from driftwarden.service.logs import logger
from driftwarden.service.runtime import Runtime
from driftwarden.service.sources.platform import attribute_from_platform
from driftwarden.store.operations import last_in_sync_before
from driftwarden.store.updates import recorded_updates

OUT_OF_BAND = OutOfBandAttribution()
_SLACK = timedelta(seconds=2)  # the history's times have second precision


def attribute(
    runtime: Runtime, stack: StackConfig, check: Check, changes: Sequence[ResourceChange],
    *, before: datetime, cancel: threading.Event | None = None,
    known: Mapping[tuple[str, str], Attribution | None],
    refs: Mapping[str, ManagedRef] | None = None,
) -> dict[str, Attribution]:  # fmt: skip
    """Attribution per resource URN of a check's changes.

    A resource whose differences are all open findings already keeps the attribution
    they were opened with: steady drift costs no state export on every scan, and the
    answer does not move while the drift stays. With `refs` (the stack's platform objects,
    when an audit source covers it), the platform's record names the person: it wins over
    "changed outside Pulumi", and says why when it names nobody. `known`: the attributions
    of the check's open findings by (urn, path), as the check read them.
    """
    result: dict[str, Attribution] = {}
    fresh = []
    for change in changes:
        keys = [obs.key for obs in observations([change])]
        if all(key in known for key in keys):
            stored = next((known[key] for key in keys if known[key]), None)
            if stored:
                result[change.urn] = stored
        else:
            fresh.append(change)
    new = _attribute_new(runtime, stack, check, fresh, before=before, cancel=cancel)
    if refs and check is Check.DRIFT and changes:
        # Asked for every change, steady ones too: a value changed again by someone else
        # names them (the record is in the store: no engine call).
        since = _last_in_sync(runtime, stack.name, before)
        platform = attribute_from_platform(runtime, stack, changes, refs, since=since, now=before)
        for urn, said in platform.items():
            if isinstance(said, PlatformAttribution):
                result[urn] = new[urn] = said
            elif urn in new and not isinstance(new[urn], UpdateAttribution):
                new[urn] = said
    return result | new


def _attribute_new(
    runtime: Runtime, stack: StackConfig, check: Check, changes: Sequence[ResourceChange],
    *, before: datetime, cancel: threading.Event | None,
) -> dict[str, Attribution]:  # fmt: skip
    if not changes:
        return {}
    if check is Check.CODE:
        commit = newest_commit(stack)
        return {change.urn: commit for change in changes}
    updates = _updates_since_in_sync(runtime, stack.name, before)
    if not updates:
        return {change.urn: OUT_OF_BAND for change in changes}
    try:
        modified = runtime.stack_engine(stack, cancel).modified_times()
    except DriftwardenError as exc:
        logger.warning("cannot read the state for attribution",
                       extra={"stack": stack.name, "error": str(exc)})  # fmt: skip
        modified = {}
    failed = [u for u in updates if not u.succeeded]
    result: dict[str, Attribution] = {}
    for change in changes:
        written = modified.get(change.urn)
        touching = [
            u for u in updates
            if written is not None and u.start_time - _SLACK <= written <= u.end + _SLACK
        ]  # fmt: skip
        if touching:
            result[change.urn] = UpdateAttribution.of(touching[-1])
        elif failed:
            result[change.urn] = UpdateAttribution.of(failed[-1])
        else:
            result[change.urn] = OUT_OF_BAND
    return result


def _last_in_sync(runtime: Runtime, stack: str, before: datetime) -> datetime | None:
    with runtime.store.read() as session:
        return last_in_sync_before(session, stack, Check.DRIFT.value, before)


def _updates_since_in_sync(runtime: Runtime, stack: str, before: datetime) -> list[StackUpdate]:
    with runtime.store.read() as session:
        last_in_sync = last_in_sync_before(session, stack, Check.DRIFT.value, before)
        updates = recorded_updates(session, stack)
    if last_in_sync is None:
        return updates
    return [u for u in updates if u.end >= last_in_sync]


def newest_commit(stack: StackConfig) -> Attribution:
    """The newest commit touching the project directory, when it is in a git repository."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%H%x00%an%x00%ae%x00%aI%x00%s", "--", "."],
            cwd=stack.project_dir, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except OSError:
        return UnknownAttribution()
    fields = out.stdout.strip().split("\0")
    if out.returncode != 0 or len(fields) != 5:
        return UnknownAttribution()
    commit, author, email, when, subject = fields
    return CommitAttribution(commit, f"{author} <{email}>", when, subject)
