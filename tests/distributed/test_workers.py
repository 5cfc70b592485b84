"""Distributed mode end to end: `driftwarden worker` processes as separate hosts on one
PostgreSQL store and queue, the real engine running the checks."""

from __future__ import annotations

import collections
import itertools
import time
from datetime import datetime, timedelta

import pytest

from tests.distributed.cluster import Cluster, overlapping, wait_until

pytestmark = pytest.mark.engine

PERIOD_SECONDS = 10  # 12 drift checks fit in it on 2 cores (see the README's figures)
RUN_SECONDS = 60


def test_three_workers_share_the_fleet_each_stack_on_every_period_never_twice_at_once(
    cluster: Cluster,
) -> None:
    fleet = cluster.fleet
    for index in range(12):
        fleet.add(f"s{index:02d}", checks=("drift",), pulumi_stack=f"s{index:02d}",
                  schedule=f"every {PERIOD_SECONDS}s")  # fmt: skip
    cluster.write_fleet_config()
    assert fleet.cli("db", "upgrade").code == 0
    for name in ("w1", "w2", "w3"):
        cluster.start(name)
    time.sleep(RUN_SECONDS)
    for name in ("w1", "w2", "w3"):
        assert cluster.stop(name) == 0, cluster.hosts[name].log.read_text()[-3000:]

    operations = cluster.operations()
    assert operations, "no check ran"
    assert [op for op in operations if op.status == "running"] == []
    assert list(overlapping(operations)) == [], "two checks of one stack ran at once"
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
        assert {op.status for op in ops} == {"succeeded"}, stack
    hosts = collections.Counter(op.host for op in operations)
    assert set(hosts) == {"w1", "w2", "w3"}, hosts
    assert min(hosts.values()) >= len(operations) // 6, f"work not spread: {hosts}"
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
