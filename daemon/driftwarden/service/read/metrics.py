"""What `/metrics` exposes, read from the store on each scrape (no counter lives in a
process: every host and restart reports the same numbers). Labels are bounded: stack
and check names, states, severities, statuses and error kinds; never URNs or paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from driftwarden.domain.model import Check, stack_state
from driftwarden.service.runtime import Runtime
from driftwarden.store.fleet import (
    DurationHistogram,
    check_durations,
    failures_by_kind,
    last_successes,
    open_by_severity,
    outbox_depth,
    remediation_outcomes,
)
from driftwarden.store.platform import SourceProgress, source_progress
from driftwarden.store.queries import stack_summaries

# Durations, failures and remediation steps are counted over this window, as gauges:
# all-time counts read from the store would go down when `db prune` deletes operations.
WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class CheckState:
    stack: str
    check: str
    status: str  # the latest operation's status (running, succeeded, failed, …)
    outcome: str | None  # its verdict (in_sync, drifted, changes_pending, error)
    last_success: datetime | None
    host: str = ""  # where the latest operation ran (or runs)


@dataclass(frozen=True)
class Snapshot:
    stack_states: dict[str, str]  # stack -> StackState value
    checks: list[CheckState]
    open_findings: dict[tuple[str, str], int]  # (stack, severity or "unrated") ->
    durations: DurationHistogram
    failures: dict[tuple[str, str], int]  # (status, error kind) ->
    remediations: dict[tuple[str, str], int]  # (kind, status) ->
    outbox: dict[str, int]  # status ->
    audit_head_seq: int
    sources: list[SourceProgress] = field(default_factory=list)  # [[audit_sources]]


def snapshot(runtime: Runtime, now: datetime | None = None) -> Snapshot:
    config = runtime.config  # once: a reload may replace it meanwhile
    stacks = [stack.name for stack in config.stacks]
    configured = set(stacks)
    since = (now or datetime.now(UTC)) - WINDOW
    with runtime.store.read() as session:
        summaries = stack_summaries(session, stacks, [check.value for check in Check])
        successes = last_successes(session)
        by_severity = open_by_severity(session)
        durations = check_durations(session, since)
        failures = failures_by_kind(session, since)
        remediations = remediation_outcomes(session, since)
        outbox = outbox_depth(session)
        sources = [source_progress(session, source.name) for source in config.audit_sources]
    head_seq, _ = runtime.store.audit.head(runtime.store)
    checks = []
    for summary in summaries:
        for check in config.stack(summary.stack).checks:
            latest = summary.latest.get(check.value)
            checks.append(CheckState(
                summary.stack, check.value,
                latest.status if latest else "never", latest.outcome if latest else None,
                successes.get((summary.stack, check.value)), latest.host if latest else "",
            ))  # fmt: skip
    return Snapshot(
        stack_states={
            s.stack: stack_state((op.status, op.outcome) for op in s.latest.values()).value
            for s in summaries
        },
        checks=checks,
        open_findings={
            (stack, severity or "unrated"): count
            for stack, counts in by_severity.items()
            if stack in configured
            for severity, count in counts.items()
        },
        durations=durations,
        failures=failures,
        remediations=remediations,
        outbox=outbox,
        audit_head_seq=head_seq,
        sources=sources,
    )
