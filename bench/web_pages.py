#!/usr/bin/env python3
"""Dashboard page times on a store of S stacks (seeded like bench/store_bench.py): a real
`driftwarden serve` on loopback, each page requested R times after one warm-up. Prints
the server's own time (its Server-Timing header) and the client's wall time, medians.
Goal (issue 13): the fleet page under 150 ms of server time at 500 stacks.

    .venv/bin/python bench/web_pages.py [--stacks S] [--operations N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from driftwarden.service.statedir import ENV_STATE_DIR  # noqa: E402
from store_bench import Sizes, seeded_fleet  # noqa: E402

DRIFTWARDEN = REPO / ".venv" / "bin" / "driftwarden"
GOAL_MS = {"fleet": 150.0}


def fetch(url: str) -> tuple[float, float, bytes]:
    """(server ms, wall ms, body)."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
        timing = response.headers.get("Server-Timing", "")
    wall = (time.perf_counter() - started) * 1000
    match = re.search(r"dur=([0-9.]+)", timing)
    return (float(match.group(1)) if match else float("nan")), wall, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=500)
    parser.add_argument("--operations", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dw-web-") as scratch:
        root = Path(scratch)
        sizes = Sizes(args.operations, max(args.operations // 10, 10), args.stacks, 1000)
        config = seeded_fleet(root, sizes)
        env = {k: v for k, v in os.environ.items() if k != ENV_STATE_DIR}
        server = subprocess.Popen(
            [str(DRIFTWARDEN), "--config", str(config), "serve", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            found = re.search(r"serving (http://\S+)", line)
            if found is None:
                raise SystemExit(f"serve did not start: {line}{server.stdout.read()}")
            url = found.group(1)
            fleet = json.loads(fetch(url + "/?format=json")[2])
            busiest = max(fleet["stacks"], key=lambda row: row["open_findings"])["stack"]
            stack = json.loads(fetch(f"{url}/stacks/{busiest}?format=json")[2])
            finding = stack["findings"][0]["finding_id"] if stack["findings"] else None
            pages = {
                "fleet": "/",
                "fleet, filtered (drifted)": "/?state=drifted&sort=findings&order=desc",
                "fleet JSON": "/?format=json",
                f"stack ({len(stack['findings'])} open findings)": f"/stacks/{busiest}",
                "audit (100 events)": "/audit",
                "metrics": "/metrics",
                "healthz": "/healthz",
            }
            if finding is not None:
                pages["finding"] = f"/stacks/{busiest}/findings/{finding}"
            figures = {}
            for name, path in pages.items():
                fetch(url + path)  # warm-up: templates compiled, caches filled
                runs = [fetch(url + path) for _ in range(args.rounds)]
                server_ms = statistics.median(run[0] for run in runs)
                wall_ms = statistics.median(run[1] for run in runs)
                figures[name] = (server_ms, wall_ms, len(runs[0][2]))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)

    print(f"dashboard pages, {args.stacks} stacks, {args.operations:,} operations, "
          f"medians of {args.rounds}")  # fmt: skip
    print(f"| {'page':<36} | server ms | wall ms | bytes     | goal       |")
    print(f"|{'-' * 38}|-----------|---------|-----------|------------|")
    for name, (server_ms, wall_ms, size) in figures.items():
        goal = f"< {GOAL_MS[name]:.0f} ms" if name in GOAL_MS else ""
        print(f"| {name:<36} | {server_ms:9.1f} | {wall_ms:7.1f} | {size:9,} | {goal:<10} |")


if __name__ == "__main__":
    main()
