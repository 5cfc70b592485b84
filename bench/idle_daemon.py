#!/usr/bin/env python3
"""An idle daemon: S demo stacks on hourly schedules, after their first scans, for T
seconds. Prints the daemon tree's resident memory (first and last sample, and the
largest) and its CPU use. Goals (issue 12): <= 80 MB RSS, < 1% of a core.

    .venv/bin/python bench/idle_daemon.py [--stacks S] [--seconds T]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.integration.* holds the deploy-once helpers
sys.path.insert(0, str(REPO / "bench"))

from fleet import Daemon, hourly_fleet  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def tree(root: int) -> list[int]:
    """`root` and every process descending from it."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [root], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def rss_and_cpu(pids: list[int]) -> tuple[int, float]:
    """Resident bytes and CPU seconds of `pids`: each one's user + system time and that of
    its children that ended (cutime, cstime). A worker's finished engine runs are in its
    own cutime, and move into the daemon's when the daemon reaps it: counting both for
    every process keeps a worker retired during the window from adding the CPU of the
    checks it served before the window."""
    rss, cpu = 0, 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu += sum(int(ticks) for ticks in fields[11:15]) / TICKS  # utime stime cutime cstime
        rss += int(fields[21]) * PAGE
    return rss, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dw-idle-") as scratch:
        fleet, stacks = hourly_fleet(Path(scratch), args.stacks)
        daemon = Daemon(fleet, stacks)  # returns once the first scans are done
        try:
            pid = daemon.process.pid
            samples = []
            _, cpu_start = rss_and_cpu(tree(pid))
            started = time.monotonic()
            while time.monotonic() - started < args.seconds:
                samples.append(rss_and_cpu(tree(pid))[0])
                time.sleep(min(1.0, args.seconds / 10))
            rss_end, cpu_end = rss_and_cpu(tree(pid))
            samples.append(rss_end)
            elapsed = time.monotonic() - started
        finally:
            daemon.stop()

    mb = 1024 * 1024
    print(f"idle daemon, {args.stacks} stacks on hourly schedules, {elapsed:.0f} s after "
          "their first scans (daemon and every process it started)")  # fmt: skip
    print(f"RSS first {samples[0] / mb:.0f} MB, last {samples[-1] / mb:.0f} MB, "
          f"largest {max(samples) / mb:.0f} MB   (goal <= 80 MB)")  # fmt: skip
    print(f"CPU {100 * (cpu_end - cpu_start) / elapsed:.2f}% of a core   (goal < 1%)")


if __name__ == "__main__":
    main()
