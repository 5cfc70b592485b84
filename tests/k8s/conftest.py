"""The real Kubernetes toolchain: one cluster per session, one stack per test.

`cluster` starts etcd, kube-apiserver and kube-controller-manager on loopback with
scripts/kube-cluster (binaries from scripts/ensure-kubernetes, built from the registries)
and stops them after the session. The API server keeps its audit log, and posts it to an
audit webhook at WEBHOOK_SOURCE on a port reserved for the session (whichever test
serves it there); mallory has a token of her own, eve is who the admin impersonates.
`k8s` is a Fleet whose config installs the real pulumi-resource-kubernetes through
`[[plugins]]` into a PULUMI_HOME the session shares (the plugin is 300 MB: installed
once), and whose `deploy()` puts stacks/k8s-baseline into a namespace of its own with
the real CLI. Drift is made with tests/k8s/outofband.py.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from driftwarden.config import load_config
from driftwarden.service.runtime import install_plugins
from driftwarden.service.statedir import StateDir
from tests.conftest import REPO
from tests.integration.conftest import DemoStack, Fleet
from tests.k8s.outofband import Kubectl
from tests.notify.conftest import http_endpoint

PROJECT = REPO / "stacks" / "k8s-baseline"
API_TOKEN = "k8s-test-token-5d1f0a"
PROVIDER_VERSION = "4.25.0"


def _script(*argv: str) -> str:
    result = subprocess.run(
        [str(REPO / "scripts" / argv[0]), *argv[1:]],
        capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"scripts/{' '.join(argv)} failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


def kubernetes_toolchain() -> Path:
    """The directory of the Kubernetes binaries and provider (built once, cached)."""
    return Path(_script("ensure-kubernetes"))


WEBHOOK_SOURCE = "cluster-hook"


@dataclass(frozen=True)
class Cluster:
    root: Path
    kubeconfig: Path
    bin_dir: Path
    webhook_port: int
    webhook_token_file: Path

    @property
    def provider(self) -> Path:
        return self.bin_dir / "pulumi-resource-kubernetes"

    @property
    def audit_log(self) -> Path:
        return self.root / "logs" / "audit.log"

    @property
    def ca(self) -> Path:
        return self.root / "pki" / "ca.crt"

    def webhook_receiver_tls(self) -> str:
        """`[web]` TLS keys for the webhook's receiver (its certificate is the cluster's)."""
        pki = self.root / "pki"
        return (f'tls_cert_file = "{pki / "webhook-receiver.crt"}"\n'
                f'tls_key_file = "{pki / "webhook-receiver.key"}"\n')  # fmt: skip

    def kubectl(
        self, *args: str, who: str = "admin", stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """The real kubectl as `who`: the admin, mallory (her own token), or eve (the
        admin impersonating her, `--as=eve --as-group=system:masters`)."""
        config = self.root / "users" / "mallory.kubeconfig" if who == "mallory" else self.kubeconfig
        identity = ["--as=eve", "--as-group=system:masters"] if who == "eve" else []
        done = subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={config}", *identity, *args],
            input=stdin, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    bin_dir = kubernetes_toolchain()
    root = tmp_path_factory.mktemp("cluster")
    port = _free_port()
    token_file = root / "webhook-token"
    token_file.write_text(secrets.token_hex(24) + "\n")
    token_file.chmod(0o600)
    kubeconfig = Path(_script(
        "kube-cluster", "up", str(root), "--user", "mallory:system:masters",
        "--audit-webhook", f"https://127.0.0.1:{port}/ingest/audit/{WEBHOOK_SOURCE}",
        "--audit-webhook-token-file", str(token_file),
    ))  # fmt: skip
    try:
        yield Cluster(root, kubeconfig, bin_dir, port, token_file)
    finally:
        subprocess.run([str(REPO / "scripts" / "kube-cluster"), "down", str(root)],
                       capture_output=True, timeout=120, check=False)  # fmt: skip


@pytest.fixture(scope="session")
def shared_pulumi_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pulumi-home")


@dataclass
class KubeStack(DemoStack):
    """A k8s-baseline stack: its namespace and the engine environment it scans with."""

    namespace: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def toml(self) -> str:
        pairs = ", ".join(f"{key} = {json.dumps(value)}" for key, value in self.env.items())
        return super().toml() + f"env = {{ {pairs} }}\n"


@dataclass
class KubeFleet(Fleet):
    cluster: Cluster | None = None
    pulumi_home: Path | None = None
    plugins: bool = True  # the [[plugins]] entry for the provider
    tables: str = ""  # more TOML after [daemon] ([[ignore]], [[targets]], …)

    @property
    def kubectl(self) -> Kubectl:
        assert self.cluster is not None
        return Kubectl(self.cluster.kubeconfig)

    def write_config(self, extra: str = "") -> None:
        assert self.cluster is not None
        daemon = f'pulumi_home = "{self.pulumi_home}"\n{extra}\n'
        plugin = (
            f'[[plugins]]\nname = "kubernetes"\nversion = "{PROVIDER_VERSION}"\n'
            f'path = "{self.cluster.provider}"\n'
            if self.plugins
            else ""
        )
        self.config_path.write_text(
            f'[daemon]\nstate_dir = "{self.state_dir}"\n{daemon}\n{plugin}\n{self.tables}\n'
            + "\n".join(stack.toml() for stack in self.stacks)
        )

    def deploy(self, name: str = "web", **options: str) -> KubeStack:
        """Copy stacks/k8s-baseline, deploy it into namespace `<name>-<n>` with the real
        CLI and provider, and add it to the config."""
        assert self.cluster is not None
        workdir = self.root / name / "project"
        shutil.copytree(PROJECT, workdir, ignore=shutil.ignore_patterns("venv", "Pulumi.*.yaml"))
        (workdir / "venv").symlink_to(PROJECT / "venv")
        stack = KubeStack(
            name=name, workdir=workdir, files=self.root / name, pulumi_stack="dev",
            checks=("drift", "code"), namespace=f"{name}-{time.monotonic_ns() % 10**9}",
            env={"KUBECONFIG": str(self.cluster.kubeconfig), **options},
        )  # fmt: skip
        self.stacks.append(stack)
        self.write_config()
        config = load_config(self.config_path)
        state = StateDir.for_config(config)
        state.ensure()
        install_plugins(config, state)  # what `scan` and `run` do on start
        env = self.environment(stack)
        subprocess.run(["pulumi", "stack", "init", "dev", "--non-interactive"], cwd=workdir,
                       env=env, check=True, capture_output=True, timeout=120)  # fmt: skip
        self.pulumi(stack, "config", "set", "namespace", stack.namespace)
        self.pulumi(stack, "config", "set", "skipAwait", "true")  # no nodes: pods never run
        self.pulumi(stack, "config", "set", "--secret", "apiToken", API_TOKEN)
        self.pulumi(stack, "up", "--yes", "--skip-preview")
        return stack

    def wait_for_controllers(self, stack: KubeStack) -> None:
        """Until the deployment controller has written what it writes on a real cluster."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            web = self.kubectl.get("apps/v1", "Deployment", "web", stack.namespace)
            if "deployment.kubernetes.io/revision" in (web["metadata"].get("annotations") or {}):
                return
            time.sleep(0.3)
        raise AssertionError("the deployment controller never annotated the Deployment")


@pytest.fixture
def k8s(tmp_path: Path, cluster: Cluster, shared_pulumi_home: Path) -> KubeFleet:
    if not (PROJECT / "venv" / "bin" / "python").exists():
        pytest.fail("stacks/k8s-baseline/venv is missing: run `make setup` (scripts/setup)")
    return KubeFleet(root=tmp_path, cluster=cluster, pulumi_home=shared_pulumi_home)


__all__ = ["http_endpoint"]  # a real webhook endpoint for the remediation tests
