#!/usr/bin/env python3
"""CLI start: `--help`, `--version`, `status` and `history` as a user runs them, on a
store of S stacks (seeded like bench/store_bench.py), medians of R runs. Goals (issue 12):
`--help` <= 0.25 s, `status` <= 0.4 s at 500 stacks.

    .venv/bin/python bench/cli_start.py [--stacks S] [--operations N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from driftwarden.service.statedir import ENV_STATE_DIR  # noqa: E402
from store_bench import Sizes, seeded_fleet  # noqa: E402

DRIFTWARDEN = REPO / ".venv" / "bin" / "driftwarden"
GOALS = {"--help": 0.25, "status --json": 0.4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=500)
    parser.add_argument("--operations", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dw-cli-start-") as scratch:
        root = Path(scratch)
        sizes = Sizes(args.operations, args.operations // 10, args.stacks, 1000)
        config = seeded_fleet(root, sizes)
        env = {k: v for k, v in os.environ.items() if k != ENV_STATE_DIR}
        commands = {
            "--help": ["--help"],
            "--version": ["--version"],
            "status --json": ["--config", str(config), "status", "--json"],
            "history --json --limit 50": ["--config", str(config), "history", "--json"],
        }
        medians = {}
        for name, argv in commands.items():
            runs = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                subprocess.run([str(DRIFTWARDEN), *argv], env=env, check=True,
                               stdout=subprocess.DEVNULL)  # fmt: skip
                runs.append(time.perf_counter() - start)
            medians[name] = statistics.median(runs)

    print(f"CLI start, {args.stacks} stacks, {args.operations:,} operations, "
          f"medians of {args.rounds}")  # fmt: skip
    print(f"| {'command':<28} | median  | goal    |")
    print(f"|{'-' * 30}|---------|---------|")
    for name, median in medians.items():
        goal = f"{GOALS[name]:.2f} s" if name in GOALS else ""
        print(f"| {name:<28} | {median:5.2f} s | {goal:<7} |")


if __name__ == "__main__":
    main()
