"""scripts/kube-cluster: up is idempotent, down stops exactly what up started, errors are
one clear line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import REPO
from tests.k8s.conftest import Cluster

KUBE_CLUSTER = REPO / "scripts" / "kube-cluster"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KUBE_CLUSTER), *args], capture_output=True, text=True,
                          timeout=180, check=False, env=env)  # fmt: skip


def pids(root: Path) -> list[int]:
    return [int(path.read_text()) for path in (root / "run").glob("*.pid")]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def test_up_twice_status_and_down_twice(tmp_path: Path, cluster: Cluster) -> None:
    env = {**os.environ, "DRIFTWARDEN_KUBE_BIN": str(cluster.bin_dir)}
    first = run("up", str(tmp_path), env=env)
    assert first.returncode == 0, first.stderr
    kubeconfig = Path(first.stdout.strip().splitlines()[-1])
    assert kubeconfig == tmp_path / "kubeconfig"
    server = json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    assert server.startswith("https://127.0.0.1:")
    started = pids(tmp_path)
    assert len(started) == 3
    assert all(alive(pid) for pid in started)

    again = run("up", str(tmp_path), env=env)
    assert again.returncode == 0
    assert again.stdout.strip() == str(kubeconfig)
    assert "already running" in again.stderr
    assert pids(tmp_path) == started  # nothing new started
    assert run("status", str(tmp_path)).stdout.strip() == "running"

    down = run("down", str(tmp_path))
    assert down.returncode == 0
    assert "stopped kube-controller-manager, kube-apiserver, etcd" in down.stderr
    assert not any(alive(pid) for pid in started)
    assert "nothing running" in run("down", str(tmp_path)).stderr
    status = run("status", str(tmp_path))
    assert (status.returncode, status.stdout.strip()) == (1, "not running")


def test_missing_binaries_and_bad_usage_are_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run("up", str(tmp_path / "c"), env={**os.environ, "DRIFTWARDEN_KUBE_BIN": str(empty)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"kube-cluster: error: {empty / 'etcd'} is missing: run scripts/ensure-kubernetes"
    ]
    usage = run("start", str(tmp_path))
    assert usage.returncode == 2
    assert "usage: scripts/kube-cluster up|down|status DIR" in usage.stderr
