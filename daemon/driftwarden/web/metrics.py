"""`/metrics` in the Prometheus text format: a collector that turns the service's
snapshot (read from the store at each scrape) into metric families."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from driftwarden.domain.model import NotificationStatus
from driftwarden.domain.text import STACK_STATES
from driftwarden.service.read.metrics import Snapshot

if TYPE_CHECKING:
    from driftwarden.store.audit import VerifyReport


class FleetCollector(Collector):
    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        last_verify: Callable[[], tuple[VerifyReport, datetime] | None],
    ) -> None:
        self._snapshot = snapshot
        self._last_verify = last_verify

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        state = GaugeMetricFamily(
            "driftwarden_stack_state",
            "1 for the stack's current state (in_sync, drifted, failed, ...), else 0",
            labels=["stack", "state"],
        )
        for stack, current in snap.stack_states.items():
            for name in STACK_STATES:
                state.add_metric([stack, name], 1.0 if name == current else 0.0)
        yield state

        check_ok = GaugeMetricFamily(
            "driftwarden_check_up",
            "1 when the latest check of the stack succeeded (whatever it found), else 0",
            labels=["stack", "check"],
        )
        drifted = GaugeMetricFamily(
            "driftwarden_check_differences",
            "1 when the latest successful check found differences, else 0",
            labels=["stack", "check"],
        )
        success = GaugeMetricFamily(
            "driftwarden_check_last_success_timestamp_seconds",
            "When the check last finished successfully (Unix time)",
            labels=["stack", "check"],
        )
        for check in snap.checks:
            labels = [check.stack, check.check]
            check_ok.add_metric(labels, 1.0 if check.status == "succeeded" else 0.0)
            found = check.outcome in ("drifted", "changes_pending")
            drifted.add_metric(labels, 1.0 if found else 0.0)
            # 0 for never (or pruned): a staleness alert fires for a check that never works.
            last = check.last_success.timestamp() if check.last_success else 0.0
            success.add_metric(labels, last)
        yield check_ok
        yield drifted
        yield success

        running = GaugeMetricFamily(
            "driftwarden_checks_running",
            "Checks running now, per host (a worker in distributed mode)",
            labels=["host"],
        )
        hosts = Counter(check.host for check in snap.checks if check.status == "running")
        for host, count in sorted(hosts.items()):
            running.add_metric([host], float(count))
        yield running

        findings = GaugeMetricFamily(
            "driftwarden_open_findings",
            "Open findings per stack and severity (unrated: no risk rule matched)",
            labels=["stack", "severity"],
        )
        for (stack, severity), count in sorted(snap.open_findings.items()):
            findings.add_metric([stack, severity], float(count))
        yield findings

        durations = GaugeHistogramMetricFamily(
            "driftwarden_check_duration_seconds",
            "Duration of the checks finished in the last 24 h (engine run), per check kind",
            labels=["check"],
        )
        for kind, counts in sorted(snap.durations.buckets.items()):
            buckets = [
                (f"{bound:g}", float(n))
                for bound, n in zip(snap.durations.bounds, counts, strict=True)
            ]
            buckets.append(("+Inf", float(snap.durations.count[kind])))
            durations.add_metric([kind], buckets, snap.durations.total_seconds[kind])
        yield durations

        failures = GaugeMetricFamily(
            "driftwarden_engine_failures",
            "Operations of the last 24 h that failed or timed out, per status and error kind",
            labels=["status", "kind"],
        )
        for (status, kind), count in sorted(snap.failures.items()):
            failures.add_metric([status, kind], float(count))
        yield failures

        remediations = GaugeMetricFamily(
            "driftwarden_remediation_steps",
            "Remediation steps (plan-refresh, plan-up, refresh, up) of the last 24 h, per status",
            labels=["kind", "status"],
        )
        for (kind, status), count in sorted(snap.remediations.items()):
            remediations.add_metric([kind, status], float(count))
        yield remediations

        outbox = GaugeMetricFamily(
            "driftwarden_outbox_notifications",
            "Notifications in the outbox per status (pending, sent, failed)",
            labels=["status"],
        )
        for status in NotificationStatus:
            outbox.add_metric([status], float(snap.outbox.get(status, 0)))
        yield outbox

        yield GaugeMetricFamily(
            "driftwarden_audit_head_seq", "Sequence number of the audit chain's newest event",
            value=float(snap.audit_head_seq),
        )  # fmt: skip
        yield from _source_metrics(snap)
        verified = self._last_verify()
        if verified is not None:
            report, when = verified
            yield GaugeMetricFamily(
                "driftwarden_audit_verify_ok",
                "1 when the last verification of the audit chain found it intact",
                value=1.0 if report.ok else 0.0,
            )
            yield GaugeMetricFamily(
                "driftwarden_audit_verify_timestamp_seconds",
                "When the audit chain was last verified by this server (Unix time)",
                value=when.timestamp(),
            )


def registry_for(collector: FleetCollector) -> CollectorRegistry:
    """A registry of its own: the fleet's metrics, not this process's (no default
    process or GC collectors mixed in)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def _source_metrics(snap: Snapshot) -> Iterator[Metric]:
    """Each audit source: what it read (kept by the profile, dropped, malformed), the
    logs it lost to rotation, its newest event, and what the platform itself failed to
    write (a source that loses events must not look complete)."""
    events = GaugeMetricFamily(
        "driftwarden_audit_source_events",
        "Audit events an audit source read since it was added, by what became of them",
        labels=["source", "outcome"],
    )
    lost = GaugeMetricFamily(
        "driftwarden_audit_source_logs_lost",
        "Times an audit source's log was rotated away or deleted before it was read",
        labels=["source"],
    )
    newest = GaugeMetricFamily(
        "driftwarden_audit_source_last_event_timestamp_seconds",
        "When the newest event an audit source kept happened (Unix time; 0: none yet)",
        labels=["source"],
    )
    failed = GaugeMetricFamily(
        "driftwarden_audit_source_platform_errors",
        "Audit events the platform says it failed to write, per backend, when last asked",
        labels=["source", "plugin"],
    )
    for source in snap.sources:
        for outcome, count in (("kept", source.kept), ("dropped", source.dropped),
                               ("malformed", source.malformed)):  # fmt: skip
            events.add_metric([source.source, outcome], float(count))
        lost.add_metric([source.source], float(source.lost))
        stamp = source.last_event_at.timestamp() if source.last_event_at else 0.0
        newest.add_metric([source.source], stamp)
        for plugin, count in sorted((source.platform_errors or {}).items()):
            failed.add_metric([source.source, plugin], float(count))
    yield from (events, lost, newest, failed)
