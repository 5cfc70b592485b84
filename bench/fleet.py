#!/usr/bin/env python3
"""Fleet throughput: N drifted demo stacks, P at once, four ways, side by side.

    xargs -P P pulumi refresh --preview-only      the cron job driftwarden replaces
    a serial shell loop of the same
    driftwarden scan --all --check drift --parallel P
    the running daemon (max_parallel = P), all N triggered at once

Deploys stacks/local-demo once with the real CLI and copies the deployment N times (as
the test suite does), drifts every stack, then times the four alternately for R rounds
and prints medians, per-stack times and each one's ratio to `xargs -P`. Goal (issue 12):
scan and the daemon at >= 0.95 of `xargs -P` throughput.

    .venv/bin/python bench/fleet.py [--stacks N] [--parallel P] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.integration.* holds the deploy-once helpers

from tests.cli import DRIFTWARDEN  # noqa: E402
from tests.integration.conftest import DemoStack, Fleet  # noqa: E402

GOAL = 0.95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=6)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dw-fleet-") as scratch:
        fleet, stacks = hourly_fleet(Path(scratch), args.stacks)
        fleet.write_config(f"max_parallel = {args.parallel}")
        for stack in stacks:
            (stack.files / "motd.txt").write_text("edited by hand\n")
        env = fleet.environment(stacks[0])  # the engine's: one backend and passphrase

        xargs = ["xargs", "-P", str(args.parallel), "-n", "2", "sh", "-c",
                 'cd "$0" && exec pulumi --non-interactive refresh --preview-only --stack "$1"'
                 " > /dev/null"]  # fmt: skip
        pairs = "".join(f"{s.workdir} {s.pulumi_stack}\n" for s in stacks)
        loop = "".join(
            f"(cd {s.workdir} && pulumi --non-interactive refresh --preview-only"
            f" --stack {s.pulumi_stack} > /dev/null) || exit 1\n"
            for s in stacks
        )

        def run_xargs() -> None:
            subprocess.run(xargs, input=pairs, text=True, env=env, check=True)

        def run_loop() -> None:
            subprocess.run(["bash", "-c", loop], env=env, check=True)

        def run_scan() -> None:
            result = fleet.cli("scan", "--all", "--check", "drift", "--json",
                               "--parallel", str(args.parallel), subprocess=True)  # fmt: skip
            if result.code != 3:
                raise SystemExit(f"scan exited {result.code}:\n{result.stderr}")

        daemon = Daemon(fleet, stacks)
        try:
            ways: dict[str, Callable[[], None]] = {
                f"xargs -P {args.parallel} pulumi refresh --preview-only": run_xargs,
                "a serial shell loop of the same": run_loop,
                f"driftwarden scan --all --parallel {args.parallel}": run_scan,
                f"the running daemon (max_parallel {args.parallel}), all triggered": daemon.round,
            }
            times: dict[str, list[float]] = {how: [] for how in ways}
            for _ in range(args.rounds):
                for how, run in ways.items():
                    start = time.perf_counter()
                    run()
                    times[how].append(time.perf_counter() - start)
        finally:
            daemon.stop()

    medians = {how: statistics.median(values) for how, values in times.items()}
    baseline = next(iter(medians.values()))
    print(f"{args.stacks} stacks, each drifted, parallelism {args.parallel}, "
          f"medians of {args.rounds} alternating rounds")  # fmt: skip
    print(f"| {'how':<58} | wall time | per stack | vs xargs -P |")
    print(f"|{'-' * 60}|-----------|-----------|-------------|")
    for how, median in medians.items():
        print(f"| {how:<58} | {median:8.2f}s | {median / args.stacks:8.2f}s |"
              f" {baseline / median:11.2f} |")  # fmt: skip
    print(f"goal: scan and the daemon >= {GOAL:.2f} of xargs -P throughput")


def hourly_fleet(root: Path, count: int) -> tuple[Fleet, list[DemoStack]]:
    """`count` copies of one real deployment of the demo stack (drift checks, hourly)."""
    (root / "template").mkdir()
    (root / "fleet").mkdir()
    template = Fleet(root=root / "template")
    deployed = template.deployment(template.add("template"))
    fleet = Fleet(root=root / "fleet", template=deployed)
    stacks = [fleet.add(f"s{i:02d}", checks=("drift",), pulumi_stack=f"s{i:02d}",
                        schedule="every 1h") for i in range(count)]  # fmt: skip
    return fleet, stacks


class Daemon:
    """`driftwarden run` on the fleet; a round triggers every stack and waits for all."""

    def __init__(self, fleet: Fleet, stacks: list[DemoStack]) -> None:
        self.fleet, self.stacks = fleet, stacks
        self.db = fleet.state_dir / "driftwarden.db"
        self.log = (fleet.root / "daemon.log").open("w")
        env = {k: v for k, v in os.environ.items() if k not in ("DRIFTWARDEN_STATE_DIR",
                                                               "NOTIFY_SOCKET")}  # fmt: skip
        self.process = subprocess.Popen(
            [str(DRIFTWARDEN), "--config", str(fleet.config_path), "run", "--json-logs"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        self._wait_for(len(stacks), "schedule")  # its first scans: every stack is due

    def round(self) -> None:
        done = self._finished("request")
        names = [stack.name for stack in self.stacks]
        result = self.fleet.cli("trigger", *names, subprocess=True)
        if result.code != 0:
            raise SystemExit(f"trigger exited {result.code}: {result.stderr}")
        self._wait_for(done + len(names), "request")

    def _finished(self, trigger: str) -> int:
        if not self.db.exists():
            return 0
        with sqlite3.connect(f"{self.db.as_uri()}?mode=ro", uri=True, timeout=30) as conn:
            try:
                row = conn.execute(
                    "SELECT count(*) FROM operations WHERE trigger = ? AND status != 'running'",
                    (trigger,),
                ).fetchone()
            except sqlite3.OperationalError:  # not migrated yet
                return 0
        return int(row[0])

    def _wait_for(self, count: int, trigger: str) -> None:
        deadline = time.monotonic() + 600
        while self._finished(trigger) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the daemon stopped or stalled; see {self.log.name}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


if __name__ == "__main__":
    if shutil.which("xargs") is None:
        raise SystemExit("fleet.py needs xargs (Debian package findutils)")
    main()
