#!/usr/bin/env python3
"""One drift check of stacks/k8s-baseline on a real cluster: `driftwarden scan` vs
`pulumi refresh --preview-only`, timed side by side, and what each of them saw.

Starts a control plane on loopback (scripts/kube-cluster; or uses --kubeconfig), deploys
the stack with the real provider, appends `secrets` to its Role and a user to its
RoleBinding with a real client, then times both commands alternately (N rounds, default
5) and prints the medians, their ratio, and the differences each reported: the
provider's diff shows none of this drift, driftwarden shows each appended item.

    .venv/bin/python bench/k8s_refresh.py [--rounds N] [--kubeconfig PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.k8s import outofband  # noqa: E402

from driftwarden.config import load_config  # noqa: E402
from driftwarden.engine.runner import Engine  # noqa: E402
from driftwarden.service.runtime import engine_target, install_plugins  # noqa: E402
from driftwarden.service.statedir import StateDir  # noqa: E402

DRIFTWARDEN = REPO / ".venv" / "bin" / "driftwarden"
GOAL = 1.10  # one check within 10% of the engine's own refresh (issue 12)


def script(*argv: str) -> Path:
    out = subprocess.run([str(REPO / "scripts" / argv[0]), *argv[1:]], check=True,
                         stdout=subprocess.PIPE, text=True)  # fmt: skip
    return Path(out.stdout.strip().splitlines()[-1])


def timed(cmd: list[str], cwd: Path, env: dict[str, str], expect: int) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != expect:
        raise SystemExit(f"{cmd[0]} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return elapsed, result.stdout


@dataclass(frozen=True)
class Deployed:
    """stacks/k8s-baseline deployed into a namespace of its own, and how to reach it."""

    config_path: Path
    project: Path
    namespace: str
    env: dict[str, str]  # the engine's environment (pulumi on PATH)
    engine: Engine


def deploy_baseline(root: Path, kubeconfig: Path, stack_extra: str = "") -> Deployed:
    """Copy stacks/k8s-baseline under `root`, configure driftwarden for it (one stack,
    `k8s`, drift check only, `stack_extra` more of its TOML) and deploy it with the real
    CLI and provider."""
    provider = script("ensure-kubernetes") / "pulumi-resource-kubernetes"
    project = root / "project"
    shutil.copytree(REPO / "stacks" / "k8s-baseline", project,
                    ignore=shutil.ignore_patterns("venv", "Pulumi.*.yaml"))  # fmt: skip
    (project / "venv").symlink_to(REPO / "stacks" / "k8s-baseline" / "venv")
    config_path = root / "driftwarden.toml"
    config_path.write_text(
        f'[daemon]\nstate_dir = "{root / "state"}"\n\n'
        f'[[plugins]]\nname = "kubernetes"\nversion = "4.25.0"\npath = "{provider}"\n\n'
        f'[[stacks]]\nname = "k8s"\nproject_dir = "{project}"\nstack = "dev"\n'
        f'checks = ["drift"]\nenv = {{ KUBECONFIG = "{kubeconfig}" }}\n{stack_extra}'
    )
    config = load_config(config_path)
    state = StateDir.for_config(config)
    state.ensure()
    engine = Engine()
    install_plugins(config, state)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env |= engine.environment(engine_target(config.stacks[0], state))
    env["PATH"] = f"{engine.bin_dir}{os.pathsep}{env['PATH']}"
    namespace = f"bench-{os.getpid()}"

    def pulumi(*argv: str) -> None:
        subprocess.run(["pulumi", "--non-interactive", *argv, "--stack", "dev"], cwd=project,
                       env=env, check=True, capture_output=True)  # fmt: skip

    subprocess.run(["pulumi", "stack", "init", "dev", "--non-interactive"], cwd=project,
                   env=env, check=True, capture_output=True)  # fmt: skip
    pulumi("config", "set", "namespace", namespace)
    pulumi("config", "set", "skipAwait", "true")
    pulumi("config", "set", "--secret", "apiToken", "bench-token")
    pulumi("up", "--yes", "--skip-preview")
    return Deployed(config_path, project, namespace, env, engine)


def bench(root: Path, kubeconfig: Path, rounds: int) -> None:
    deployed = deploy_baseline(root, kubeconfig)
    config_path, project, namespace = deployed.config_path, deployed.project, deployed.namespace
    env, engine = deployed.env, deployed.engine
    kubectl = outofband.Kubectl(kubeconfig)
    outofband.escalate_role(kubectl, namespace)
    outofband.add_mallory(kubectl, namespace)

    scan_cmd = [str(DRIFTWARDEN), "--config", str(config_path), "scan", "--json"]
    refresh_cmd = [str(engine.bin_dir / "pulumi"), "--non-interactive", "refresh",
                   "--preview-only", "--json", "--stack", "dev"]  # fmt: skip
    dw_env = {k: v for k, v in os.environ.items() if k != "DRIFTWARDEN_STATE_DIR"}
    scans, refreshes = [], []
    for _ in range(rounds):
        elapsed, scan_out = timed(scan_cmd, project, dw_env, expect=3)
        scans.append(elapsed)
        elapsed, refresh_out = timed(refresh_cmd, project, env, expect=0)
        refreshes.append(elapsed)

    (result,) = json.loads(scan_out)["results"]
    found = [f"{c['urn'].rsplit('::', 1)[-1]}: {p['path']} ({p['severity']})"
             for c in result["changes"] for p in c["properties"]]  # fmt: skip
    summary = json.loads(refresh_out)["changeSummary"]
    scan_median, refresh_median = statistics.median(scans), statistics.median(refreshes)
    ratio = scan_median / refresh_median
    print(f"k8s-baseline (11 objects, real provider 4.25.0 and kube-apiserver 1.33), "
          f"rounds: {rounds} (alternating), pulumi v{engine.version}")  # fmt: skip
    print(f"driftwarden scan --check drift --json  median {scan_median:.2f}s  "
          f"(min {min(scans):.2f}s, max {max(scans):.2f}s)")  # fmt: skip
    print(f"pulumi refresh --preview-only --json   median {refresh_median:.2f}s  "
          f"(min {min(refreshes):.2f}s, max {max(refreshes):.2f}s)")  # fmt: skip
    verdict = "met" if ratio <= GOAL else "not met"
    print(f"ratio scan/refresh: {ratio:.2f}x (goal <= {GOAL:.2f}x: {verdict})")
    print(f"pulumi refresh --preview-only saw: {json.dumps(summary)}")
    print(f"driftwarden saw {len(found)} differences: {'; '.join(found)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kubeconfig", type=Path, help="use this cluster instead of a new one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dw-bench-k8s-") as scratch:
        root = Path(scratch)
        if args.kubeconfig:
            bench(root, args.kubeconfig, args.rounds)
            return
        kubeconfig = script("kube-cluster", "up", str(root / "cluster"))
        try:
            bench(root, kubeconfig, args.rounds)
        finally:
            subprocess.run([str(REPO / "scripts" / "kube-cluster"), "down",
                            str(root / "cluster")], check=False, capture_output=True)  # fmt: skip


if __name__ == "__main__":
    main()
