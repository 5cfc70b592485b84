#!/usr/bin/env python3
"""One drift check of the demo stack: `driftwarden scan` vs `pulumi refresh --preview-only`.

Deploys stacks/local-demo into a scratch state directory, drifts one file, then times
both commands alternately (N rounds, default 5) and prints the medians and their ratio.

    .venv/bin/python bench/scan_vs_refresh.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from demo_stack import deploy_demo

REPO = Path(__file__).resolve().parent.parent
DRIFTWARDEN = REPO / ".venv" / "bin" / "driftwarden"


def timed(cmd: list[str], cwd: Path, env: dict[str, str], expect: int) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != expect:
        raise SystemExit(f"{cmd[0]} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dw-bench-") as scratch:
        root = Path(scratch)
        demo = deploy_demo(root)
        project, config_path, engine, env = demo.project, demo.config_path, demo.engine, demo.env
        (root / "files" / "motd.txt").write_text("HACKED\n")

        scan_cmd = [str(DRIFTWARDEN), "--config", str(config_path), "scan", "--json"]
        refresh_cmd = [
            str(engine.bin_dir / "pulumi"),
            "--non-interactive",
            "refresh",
            "--preview-only",
            "--stack",
            "dev",
        ]
        dw_env = {k: v for k, v in os.environ.items() if k != "DRIFTWARDEN_STATE_DIR"}
        scans, refreshes = [], []
        for _ in range(args.rounds):
            scans.append(timed(scan_cmd, project, dw_env, expect=3))
            refreshes.append(timed(refresh_cmd, project, env, expect=0))

    scan_median, refresh_median = statistics.median(scans), statistics.median(refreshes)
    print(f"rounds: {args.rounds} (alternating), pulumi v{engine.version}")
    print(
        f"driftwarden scan --check drift --json  median {scan_median:.2f}s  "
        f"(min {min(scans):.2f}s, max {max(scans):.2f}s)"
    )
    print(
        f"pulumi refresh --preview-only          median {refresh_median:.2f}s  "
        f"(min {min(refreshes):.2f}s, max {max(refreshes):.2f}s)"
    )
    print(f"ratio scan/refresh: {scan_median / refresh_median:.2f}x")


if __name__ == "__main__":
    main()
