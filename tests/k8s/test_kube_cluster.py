"""scripts/kube-cluster: up is idempotent, down stops exactly what up started, errors are
one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import time
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
    said = run("status", str(tmp_path)).stdout.strip().splitlines()
    assert said == ["running", f"audit log: {tmp_path / 'logs' / 'audit.log'}"]

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


def test_the_audit_log_keeps_every_write_with_who_made_it(cluster: Cluster) -> None:
    """The session's cluster: people with tokens of their own and by impersonation, the
    controllers under their own identities, and the engine's server-side applies, all in
    the log (none dropped by the API server), reads not."""
    name = f"audit-probe-{os.getpid()}"
    cluster.kubectl("create", "configmap", name, "--from-literal=a=1", who="mallory")
    cluster.kubectl("label", "configmap", name, "seen=yes", who="eve")
    cluster.kubectl("get", "configmap", name, who="mallory")
    cluster.kubectl("delete", "configmap", name)
    manifest = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-ssa\ndata:\n  a: b\n"
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=manifest, who="mallory")
    cluster.kubectl("delete", "configmap", f"{name}-ssa")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = [json.loads(line) for line in cluster.audit_log.read_text().splitlines()]
        mine = [e for e in events if (e["objectRef"].get("name") or "").startswith(name)]
        if len(mine) >= 5:
            break
        time.sleep(0.2)
    who = [(e["user"]["username"], (e.get("impersonatedUser") or {}).get("username"), e["verb"])
           for e in mine]  # fmt: skip
    assert who == [("mallory", None, "create"), ("admin", "eve", "patch"),
                   ("admin", None, "delete"), ("mallory", None, "patch"),
                   ("admin", None, "delete")]  # fmt: skip
    assert all(e["verb"] not in ("get", "list", "watch") for e in events)
    managers = {e["user"]["username"] for e in events
                if e["userAgent"].startswith("kube-controller-manager")}  # fmt: skip
    assert "admin" not in managers
    assert "system:kube-controller-manager" in managers
    assert any(m.startswith("system:serviceaccount:kube-system:") for m in managers)
    apiserver_log = (cluster.root / "logs" / "kube-apiserver.log").read_text()
    assert "Error in audit plugin 'log'" not in apiserver_log


def test_a_bad_user_is_one_line(tmp_path: Path) -> None:
    result = run("up", str(tmp_path), "--user", "admin")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "kube-cluster: error: --user 'admin': that identity is the cluster's own"
    )
    webhook = run("up", str(tmp_path), "--audit-webhook", "http://127.0.0.1:1/x",
                  "--audit-webhook-token-file", "/dev/null")  # fmt: skip
    assert webhook.returncode == 1
    assert "must be https://" in webhook.stderr
