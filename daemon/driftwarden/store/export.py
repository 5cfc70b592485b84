"""Audit events as they leave the store — `audit export` and the forwarders: `native`
(the event as the chain hashes it: what `audit verify --public-key --export` reads) or
`ocsf` (an OCSF 1.3 API Activity record, for a SIEM). Digests are events, so both carry
them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TextIO

from driftwarden.domain.model import AuditAction
from driftwarden.store.audit import ChainEvent
from driftwarden.store.digests import store_events

if TYPE_CHECKING:
    from driftwarden.store.db import Store

ExportFormat = Literal["native", "ocsf"]
OCSF_VERSION = "1.3.0"
_API_ACTIVITY = 6003  # class_uid; category 6, Application Activity
_OTHER = 99  # activity_id: our actions are not OCSF's create/read/update/delete
_FAILED_OUTCOMES = frozenset({"failed", "error", "refused", "declined", "timed_out"})


def ocsf_record(event: ChainEvent) -> dict[str, Any]:
    """One event as an OCSF API Activity record; the chain's own fields (seq, hashes,
    details) under `unmapped`."""
    when = datetime.fromisoformat(event.time.replace("Z", "+00:00"))
    resources: list[dict[str, str]] = []
    if event.stack is not None:
        resources.append({"type": "pulumi_stack", "name": event.stack})
    if event.operation_id is not None:
        resources.append({"type": "driftwarden_operation", "uid": event.operation_id})
    failed = event.outcome in _FAILED_OUTCOMES
    return {
        "class_uid": _API_ACTIVITY,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": _OTHER,
        "activity_name": event.action,
        "type_uid": _API_ACTIVITY * 100 + _OTHER,
        "severity_id": 1,
        "severity": "Informational",
        "status_id": 2 if failed else 1,
        "status": "Failure" if failed else "Success",
        "status_detail": event.outcome,
        "time": int(when.timestamp() * 1000),
        "time_dt": event.time,
        "actor": {"user": {"name": event.actor}},
        "api": {"operation": event.action, "service": {"name": "driftwarden"}},
        "resources": resources,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "driftwarden", "vendor_name": "driftwarden"},
            "uid": str(event.seq),
            "sequence": event.seq,
            "log_name": "audit",
        },
        "unmapped": {
            "seq": event.seq,
            "hash": event.hash,
            "prev_hash": event.prev_hash,
            "details": json.loads(event.details),
            **({"digest": True} if event.action == AuditAction.AUDIT_DIGEST else {}),
        },
    }


def render(event: ChainEvent, fmt: ExportFormat) -> str:
    """One line (no newline) of NDJSON in `fmt`, ASCII only."""
    record = event.native() if fmt == "native" else ocsf_record(event)
    return json.dumps(record, separators=(",", ":"), ensure_ascii=True)


def write_events(events: Iterable[ChainEvent], out: TextIO, fmt: ExportFormat) -> int:
    count = 0
    for event in events:
        out.write(render(event, fmt) + "\n")
        count += 1
    return count


def export_events(store: Store, out: TextIO, fmt: ExportFormat = "ocsf") -> int:
    """Stream every event, in seq order, one JSON object per line."""
    return write_events(store_events(store), out, fmt)
