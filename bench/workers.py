#!/usr/bin/env python3
"""Distributed mode's throughput: N drifted demo stacks checked by 1, 2 and 3 workers (one
engine run each, as three one-core hosts would give), against `scan --all` on one host.

    driftwarden scan --all --check drift --parallel 1     no queue, one engine at a time
    1, 2, 3 `driftwarden worker` processes, all N stacks triggered at once

A real PostgreSQL server (the store and the queue) on loopback, the real engine. Each way
runs R rounds; medians. The queue's own cost per check is one worker's time per check
less `scan --all --parallel 1`'s; "idle between checks" is the mean gap on one worker
from an operation's end to the next one's start (fetch, history ingest, store writes).
On a 2-core machine three workers share two cores: the point is that the work spreads
and nothing is lost, not that it gets faster than the cores allow.

    .venv/bin/python bench/workers.py [--stacks N] [--rounds R] [--workers 1,2,3]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests' deploy-once and cluster helpers
sys.path.insert(0, str(REPO / "bench"))

from tests.distributed.cluster import Cluster, wait_until  # noqa: E402
from tests.pgserver import create_database, running_postgres  # noqa: E402

from fleet import hourly_fleet  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2,3")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    with tempfile.TemporaryDirectory(prefix="dw-workers-") as scratch, running_postgres() as pg:
        fleet, stacks = hourly_fleet(Path(scratch), args.stacks)
        create_database(pg, "bench")
        cluster = Cluster(fleet, pg, "bench",
                          extra_config='max_parallel = 1\ntakeover_after = "30s"')  # fmt: skip
        cluster.write_fleet_config()
        if fleet.cli("db", "upgrade").code != 0:
            raise SystemExit("db upgrade failed")
        for stack in stacks:
            (stack.files / "motd.txt").write_text("edited by hand\n")
        bench = Bench(cluster, [stack.name for stack in stacks])
        bench.warm_up()
        for _ in range(args.rounds):
            bench.scan_all()
            for count in counts:
                bench.workers(count)
    report(args.stacks, args.rounds, bench)


class Bench:
    def __init__(self, cluster: Cluster, names: list[str]) -> None:
        self.cluster, self.names = cluster, names
        self.times: dict[str, list[float]] = {}
        self.gaps: list[float] = []

    def finished(self, trigger: str) -> int:
        return sum(1 for op in self.cluster.operations()
                   if op.trigger == trigger and op.status != "running")  # fmt: skip

    def warm_up(self) -> None:
        """The first worker scans every (never-scanned) stack once."""
        self.cluster.start("w1")
        wait_until("the first scans", lambda: self.finished("schedule") >= len(self.names), 600)
        self.cluster.stop("w1")

    def scan_all(self) -> None:
        start = time.perf_counter()
        result = self.cluster.fleet.cli("scan", "--all", "--check", "drift", "--parallel", "1",
                                        subprocess=True)  # fmt: skip
        if result.code != 3:
            raise SystemExit(f"scan exited {result.code}: {result.stderr}")
        self.times.setdefault(DIRECT, []).append(time.perf_counter() - start)

    def workers(self, count: int) -> None:
        """`count` idle workers; every stack triggered at once; until all are checked."""
        hosts = [f"w{i}" for i in range(1, count + 1)]
        for host in hosts:
            self.cluster.start(host)
        time.sleep(3)  # started and idle (a worker's start is not a check's cost)
        wanted = self.finished("request") + len(self.names)
        before = {op.id for op in self.cluster.operations()}
        start = time.perf_counter()
        if self.cluster.fleet.cli("trigger", *self.names, subprocess=True).code != 0:
            raise SystemExit("trigger failed")
        wait_until("the round", lambda: self.finished("request") >= wanted, 600)
        self.times.setdefault(label(count), []).append(time.perf_counter() - start)
        if count == 1:
            ops = sorted((op for op in self.cluster.operations() if op.id not in before),
                         key=lambda op: op.started_at)  # fmt: skip
            self.gaps += [(b.started_at - a.finished_at).total_seconds()
                          for a, b in itertools.pairwise(ops) if a.finished_at]  # fmt: skip
        for host in hosts:
            self.cluster.stop(host)


DIRECT = "scan --all --parallel 1 (one host, no queue)"


def label(count: int) -> str:
    return f"{count} worker(s) x 1 engine"


def report(stacks: int, rounds: int, bench: Bench) -> None:
    medians = {how: statistics.median(values) for how, values in bench.times.items()}
    direct = medians[DIRECT]
    one = medians.get(label(1))
    print(f"{stacks} stacks, each drifted, drift checks; medians of {rounds} rounds")
    print(f"| {'how':<46} | wall time | checks/s | vs 1 worker |")
    print(f"|{'-' * 48}|-----------|----------|-------------|")
    for how, median in medians.items():
        versus = f"{one / median:11.2f}" if one else f"{'-':>11}"
        print(f"| {how:<46} | {median:8.2f}s | {stacks / median:8.2f} | {versus} |")
    if one:
        print(f"queue's own cost per check (1 worker vs scan --all --parallel 1): "
              f"{(one - direct) / stacks * 1000:.0f} ms")  # fmt: skip
    if bench.gaps:
        print(
            f"idle between checks on one worker: {statistics.mean(bench.gaps) * 1000:.0f} ms mean"
        )
    print("goal: the work spreads over the workers, each check once (correctness, not speed, "
          "on 2 cores)")  # fmt: skip


if __name__ == "__main__":
    main()
