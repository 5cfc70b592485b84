"""Distributed mode end to end: `driftwarden worker` processes as separate hosts on one
PostgreSQL store and queue, the real engine running the checks."""

from __future__ import annotations

import collections
import itertools
import os
import signal
import time
from datetime import datetime, timedelta

import pytest

from tests.distributed.cluster import Cluster, Operation, overlapping, wait_until

pytestmark = pytest.mark.engine

# 12 drift checks (about 1.9 s each, on 3 workers sharing 2 cores) take about 8 s of it: the
# margin keeps "every period" true on a slower machine. The 2 s would need ~10
# cores here; at 2 s the queueing lock drops the periods a busy stack cannot take (and
# the skips are audited), which is the point of that lock, not a loss.
PERIOD_SECONDS = 15
RUN_SECONDS = 75


def run_fleet(cluster: Cluster, period: int, seconds: int) -> list[Operation]:
    """12 stacks on `period`, three workers for `seconds`, then drained; the operations."""
    fleet = cluster.fleet
    for index in range(12):
        fleet.add(f"s{index:02d}", checks=("drift",), pulumi_stack=f"s{index:02d}",
                  schedule=f"every {period}s")  # fmt: skip
    cluster.write_fleet_config()
    assert fleet.cli("db", "upgrade").code == 0
    for name in ("w1", "w2", "w3"):
        cluster.start(name)
    time.sleep(seconds)
    for name in ("w1", "w2", "w3"):
        assert cluster.stop(name) == 0, cluster.hosts[name].log.read_text()[-3000:]
    operations = cluster.operations()
    assert operations, "no check ran"
    assert [op for op in operations if op.status == "running"] == []
    assert list(overlapping(operations)) == [], "two checks of one stack ran at once"
    assert {op.status for op in operations} == {"succeeded"}
    hosts = collections.Counter(op.host for op in operations)
    assert set(hosts) == {"w1", "w2", "w3"}, hosts
    assert min(hosts.values()) >= len(operations) // 6, f"work not spread: {hosts}"
    return operations


def test_three_workers_share_the_fleet_each_stack_on_every_period_never_twice_at_once(
    cluster: Cluster,
) -> None:
    operations = run_fleet(cluster, PERIOD_SECONDS, RUN_SECONDS)
    by_stack = collections.defaultdict(list)
    for op in operations:
        by_stack[op.stack].append(op)
    assert sorted(by_stack) == [f"s{i:02d}" for i in range(12)]
    first = min(op.started_at for op in operations)
    last = max(op.started_at for op in operations)
    for stack, ops in by_stack.items():
        # Every period of the run (after the first check) has a check of every stack.
        starts = sorted(op.started_at for op in ops)
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert len(starts) >= (last - first).total_seconds() // PERIOD_SECONDS, (stack, starts)
        assert max(gaps) < timedelta(seconds=2 * PERIOD_SECONDS), (stack, gaps)
    # One scheduler for the fleet: each stack queued once per period, not once per worker
    # (three schedulers would queue a stack again as soon as its last check started).
    queued = collections.defaultdict(list)
    for host in cluster.hosts.values():
        for record in host.log_records():
            if record.get("message") == "check queued" and record.get("trigger") == "schedule":
                queued[record["stack"]].append(datetime.fromisoformat(record["time"]))
    assert sorted(queued) == sorted(by_stack)
    for stack, times in queued.items():
        gaps = [b - a for a, b in itertools.pairwise(sorted(times))]
        assert min(gaps) > timedelta(seconds=PERIOD_SECONDS - 1), (stack, gaps)


def test_on_a_2s_schedule_the_saturated_fleet_stays_fair_and_drops_periods_it_cannot_take(
    cluster: Cluster,
) -> None:
    """The issue's 2 s schedule: 6 checks a second asked of a machine that does about 1.5.
    Each stack waits in the queue once (its queueing lock), so the periods a busy stack
    cannot take are dropped, and audited as skips, instead of piling up; the stacks take
    turns, never two checks of one at once."""
    operations = run_fleet(cluster, 2, 60)
    per_stack = collections.Counter(op.stack for op in operations)
    assert sorted(per_stack) == [f"s{i:02d}" for i in range(12)]
    assert min(per_stack.values()) >= max(per_stack.values()) / 2, per_stack
    skipped = cluster.query("SELECT DISTINCT stack FROM audit_events WHERE action = 'scan.skipped'")
    assert len(skipped) >= 6, "a saturated fleet records its dropped periods"


def test_a_requested_scan_runs_on_some_worker_and_is_recorded_as_the_requester(
    cluster: Cluster,
) -> None:
    fleet = cluster.fleet
    stack = fleet.add("alpha", checks=("drift",), pulumi_stack="alpha", schedule="every 1h")
    cluster.write_fleet_config()
    assert fleet.cli("db", "upgrade").code == 0
    cluster.start("w1")
    cluster.start("w2")
    wait_until("the first scheduled check", lambda: len(cluster.operations()) >= 1, timeout=20)
    wait_until("it ends", lambda: all(op.status != "running" for op in cluster.operations()))
    (stack.files / "motd.txt").write_text("edited by hand\n")
    requested = fleet.cli("trigger", "alpha")
    assert requested.code == 0, requested.stderr
    wait_until("the requested check", lambda: len(cluster.operations()) == 2
               and cluster.operations()[-1].status != "running")  # fmt: skip
    ops = cluster.operations()
    assert [op.trigger for op in ops] == ["schedule", "request"]
    assert ops[-1].host in ("w1", "w2")
    assert cluster.query("SELECT outcome FROM operations WHERE id = %s", ops[-1].id) == [
        ("drifted",)]  # fmt: skip


def test_a_drained_worker_finishes_its_check_and_a_hurried_one_hands_it_over(
    cluster: Cluster,
) -> None:
    """`systemctl stop` (one SIGTERM) waits for the running check; a second SIGTERM stops
    it, and the check runs on another worker. The check is held mid-engine by a file
    replaced with a FIFO: the provider's read blocks until someone writes to it."""
    fleet = cluster.fleet
    stack = fleet.add("alpha", checks=("drift",), pulumi_stack="alpha", schedule="every 1h",
                      timeout="2m")  # fmt: skip
    cluster.write_fleet_config()
    assert fleet.cli("db", "upgrade").code == 0
    motd = stack.files / "motd.txt"
    motd.unlink()
    os.mkfifo(motd)

    def running_on(host: str) -> bool:
        return any(op.status == "running" and op.host == host for op in cluster.operations())

    w1 = cluster.start("w1").process
    assert w1 is not None
    wait_until("w1's check, blocked on the FIFO", lambda: running_on("w1"))
    w1.send_signal(signal.SIGTERM)  # drain
    time.sleep(2)
    assert w1.poll() is None, "a draining worker waits for its running check"
    with motd.open("w") as fifo:  # the blocked read gets its line and the check ends
        fifo.write("hello\n")
    assert w1.wait(timeout=120) == 0
    assert [(op.status, op.host) for op in cluster.operations()] == [("succeeded", "w1")]

    w1 = cluster.start("w1").process
    assert w1 is not None
    assert fleet.cli("trigger", "alpha").code == 0
    wait_until("w1's requested check, blocked again", lambda: running_on("w1"))
    w1.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    w1.send_signal(signal.SIGTERM)  # hurry: stop the check, hand it over
    assert w1.wait(timeout=120) == 0
    motd.unlink()
    motd.write_text("hello\n")
    cluster.start("w2")
    wait_until("the check, handed over to w2",
               lambda: [(op.status, op.host) for op in cluster.operations()][-1:]
               == [("succeeded", "w2")])  # fmt: skip
    ops = cluster.operations()
    assert [(op.status, op.host, op.trigger) for op in ops] == [
        ("succeeded", "w1", "schedule"), ("cancelled", "w1", "request"),
        ("succeeded", "w2", "request"),
    ]  # fmt: skip
