"""What the dashboard's pages show, as data: each page's HTML and its JSON twin render the
same dictionary, built on the views `status`, `history`, `drift show` and `audit log`
print (views.py), so a page and the CLI's `--json` agree."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import Severity
from driftwarden.domain.text import SEVERITIES, STACK_STATES
from driftwarden.service.read.views import (
    audit_event_view,
    finding_view,
    findings_view,
    history_view,
    iso,
    state_changes_view,
    status_view,
)
from driftwarden.service.runtime import Runtime
from driftwarden.store.fleet import AUDIT_ACTIONS, finding, finding_timeline, open_by_severity
from driftwarden.store.queries import audit_log
from driftwarden.store.updates import recorded_updates

SORT_KEYS = ("name", "state", "findings", "last_scan", "next_scan")
AUDIT_PAGE_SIZE = 100
MAX_AUDIT_PAGE = 1_000_000  # deeper: narrow the filters (an offset past it overflows)


class NotFoundError(DriftwardenError):
    """A page of something that does not exist (a stack, a finding): HTTP 404."""


@dataclass(frozen=True)
class FleetQuery:
    """The fleet page's filters and order, from its query string."""

    state: str | None = None
    severity: str | None = None  # stacks with at least one open finding this bad or worse
    name: str | None = None  # part of the stack's name
    sort: str = "name"
    descending: bool = False

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> FleetQuery:
        state = params.get("state") or None
        severity = params.get("severity") or None
        sort = params.get("sort") or "name"
        return cls(
            state=state if state in STACK_STATES else None,
            severity=severity if severity in SEVERITIES else None,
            name=(params.get("name") or "").strip() or None,
            sort=sort if sort in SORT_KEYS else "name",
            descending=params.get("order") == "desc",
        )


def _by_severity(counts: Mapping[str | None, int]) -> dict[str, int]:
    """Open findings per severity, worst first, "unrated" last; zeros left out."""
    ordered = {severity: counts.get(severity, 0) for severity in SEVERITIES}
    ordered["unrated"] = counts.get(None, 0)
    return {severity: n for severity, n in ordered.items() if n}


def _at_least(counts: Mapping[str, int], severity: str) -> bool:
    rank = Severity(severity).rank
    return any(n and Severity(s).rank >= rank for s, n in counts.items() if s in SEVERITIES)


def fleet_page(runtime: Runtime, query: FleetQuery, now: datetime | None = None) -> dict[str, Any]:
    """One row per stack (state, open findings by severity, last and next check, last
    error), filtered and sorted by `query`; the counts at the top are the whole fleet's."""
    now = now or datetime.now(UTC)
    rows = status_view(runtime.config, runtime.store, now)
    with runtime.store.read() as session:
        by_stack = open_by_severity(session)
    stacks = []
    for row in rows:
        counts = by_stack.get(row["stack"], {})
        errors = [check["error"] for check in row["checks"].values() if check["error"]]
        last_error = errors[0] if errors else None
        # The status row (what `status --json` prints for the stack), and what the page adds.
        stacks.append(row | {"open_by_severity": _by_severity(counts), "last_error": last_error})
    totals = Counter(stack["state"] for stack in stacks)
    severities: Counter[str] = Counter()
    for stack in stacks:
        severities.update(stack["open_by_severity"])
    shown = [
        stack for stack in stacks
        if (query.state is None or stack["state"] == query.state)
        and (query.severity is None or _at_least(stack["open_by_severity"], query.severity))
        and (query.name is None or query.name.lower() in stack["stack"].lower())
    ]  # fmt: skip
    shown.sort(key=_sort_key(query.sort), reverse=query.descending)
    return {
        "generated_at": iso(now),
        "counts": {
            "stacks": len(stacks),
            "states": {state: totals[state] for state in STACK_STATES if totals[state]},
            "open_findings": sum(stack["open_findings"] for stack in stacks),
            "open_by_severity": {
                severity: severities[severity]
                for severity in [*SEVERITIES, "unrated"]
                if severities[severity]
            },
        },
        "filters": {
            "state": query.state,
            "severity": query.severity,
            "name": query.name,
            "sort": query.sort,
            "order": "desc" if query.descending else "asc",
        },
        "stacks": shown,
    }


def _sort_key(sort: str) -> Any:
    state_order = {state: index for index, state in enumerate(STACK_STATES)}
    keys = {
        "name": lambda s: s["stack"],
        "state": lambda s: (state_order.get(s["state"], 99), s["stack"]),
        "findings": lambda s: (s["open_findings"], s["stack"]),
        "last_scan": lambda s: (s["last_scan"] or "", s["stack"]),
        "next_scan": lambda s: (s["next_scan"] or "", s["stack"]),
    }
    return keys[sort]


def stack_page(runtime: Runtime, name: str, now: datetime | None = None) -> dict[str, Any]:
    """A stack's state, open findings property by property, recent operations and its
    update history (as ingested from its backend)."""
    config = runtime.config  # once: a reload may replace it meanwhile
    try:
        config.stack(name)
    except DriftwardenError:
        raise NotFoundError(f"no stack named {name!r} in the config") from None
    (row,) = [r for r in status_view(config, runtime.store, now) if r["stack"] == name]
    with runtime.store.read() as session:
        updates = recorded_updates(session, name)
    return {
        "stack": row,
        "findings": findings_view(runtime.store, name),
        "operations": history_view(runtime.store, stack=name, limit=20),
        "state_changes": state_changes_view(runtime.store, name, limit=100),
        "updates": [
            {
                "version": update.version,
                "kind": update.kind,
                "result": update.result,
                "actor": update.actor,
                "start_time": iso(update.start_time),
                "end_time": iso(update.end_time),
                "message": update.message,
                "resource_changes": update.resource_changes,
            }
            for update in updates
        ],
    }


def finding_page(runtime: Runtime, stack: str, finding_id: str) -> dict[str, Any]:
    """One finding and its timeline: opened, seen/changed, resolved, approval requests
    and the notifications sent for the checks that moved it."""
    with runtime.store.read() as session:
        found = finding(session, finding_id)
        if found is None or found.stack != stack:
            raise NotFoundError(f"no finding {finding_id!r} on stack {stack!r}")
        timeline = [audit_event_view(event) for event in finding_timeline(session, found)]
        view = finding_view(found)
        resolved_at = iso(found.resolved_at)
    return {"stack": stack, "finding": view | {"resolved_at": resolved_at}, "timeline": timeline}


@dataclass(frozen=True)
class AuditQuery:
    stack: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> AuditQuery:
        def when(key: str) -> datetime | None:
            text = (params.get(key) or "").strip()
            if not text:
                return None
            try:
                value = datetime.fromisoformat(text)
                return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
            except (ValueError, OverflowError):  # not a time, or out of range in UTC
                return None

        action = params.get("action") or None
        try:
            page = min(max(1, int(params.get("page") or 1)), MAX_AUDIT_PAGE)
        except ValueError:
            page = 1
        return cls(
            stack=params.get("stack") or None,
            actor=(params.get("actor") or "").strip() or None,
            action=action if action in AUDIT_ACTIONS else None,
            since=when("since"),
            until=when("until"),
            page=page,
        )


def audit_page(runtime: Runtime, query: AuditQuery) -> dict[str, Any]:
    """The chain's head and the timeline with its filters. `verify` is filled in by the
    server when asked for (one verify at a time: web/app.py)."""
    seq, head_hash = runtime.store.audit.head(runtime.store)
    with runtime.store.read() as session:
        events = [
            audit_event_view(event)
            for event in audit_log(
                session, stack=query.stack, actor=query.actor, action=query.action,
                since=query.since, until=query.until, limit=AUDIT_PAGE_SIZE + 1,
                offset=(query.page - 1) * AUDIT_PAGE_SIZE,
            )
        ]  # fmt: skip
    return {
        "head": {"seq": seq, "hash": head_hash},
        "verify": None,
        "filters": {
            "stack": query.stack,
            "actor": query.actor,
            "action": query.action,
            "since": iso(query.since),
            "until": iso(query.until),
            "page": query.page,
        },
        "actions": AUDIT_ACTIONS,
        "stacks": [stack.name for stack in runtime.config.stacks],
        "events": events[:AUDIT_PAGE_SIZE],
        "more": len(events) > AUDIT_PAGE_SIZE,
    }
