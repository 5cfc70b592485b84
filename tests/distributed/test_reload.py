"""SIGHUP reloads the config the same way on both kinds of host — the single-host daemon
(`run`) and a distributed `worker` — because they share one lifecycle: a `[[plugins]]`
entry added by the reload is installed (the real Kubernetes provider, into a PULUMI_HOME
of its own), and a setting only a restart can apply is named. The worker used to skip
both."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli import DRIFTWARDEN
from tests.distributed.cluster import Cluster, wait_until
from tests.integration.conftest import Fleet
from tests.k8s.conftest import PROVIDER_VERSION, kubernetes_toolchain

pytestmark = pytest.mark.engine


def records(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def logged(log: Path, message: str) -> list[dict[str, Any]]:
    return [r for r in records(log) if r.get("message") == message]


@pytest.mark.parametrize("host", ["run", "worker"])
def test_a_reload_installs_new_plugins_and_names_restart_only_settings(
    fleet: Fleet, cluster: Cluster, tmp_path: Path, host: str
) -> None:
    fleet.add("alpha", checks=("drift",), schedule="every 1h")
    home = tmp_path / "pulumi-home"
    plugin = (
        f'[[plugins]]\nname = "kubernetes"\nversion = "{PROVIDER_VERSION}"\n'
        f'path = "{kubernetes_toolchain() / "pulumi-resource-kubernetes"}"\n'
    )
    if host == "run":
        fleet.daemon = f'pulumi_home = "{home}"\nmax_parallel = 1'
        fleet.write_config()
        config, log = fleet.config_path, tmp_path / "run.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(DRIFTWARDEN), "--config", str(config), "run", "--json-logs"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
    else:
        cluster.extra_config += f'\npulumi_home = "{home}"\n'
        cluster.write_fleet_config()
        assert fleet.cli("db", "upgrade").code == 0  # the shared store; the key hosts copy
        started = cluster.start("host-a")
        config, log, process = started.config_path, started.log, started.process  # type: ignore[assignment]
        assert process is not None
    try:
        wait_until("the host started", lambda: bool(
            logged(log, "daemon started") or logged(log, "worker started")), 60)  # fmt: skip
        text = config.read_text().replace("max_parallel = 1", "max_parallel = 2")
        config.write_text(text.replace("[[stacks]]", plugin + "\n[[stacks]]", 1))
        if host == "worker":  # the elected scheduler reloads for the host
            wait_until("elected", lambda: bool(logged(log, "elected scheduler")), 60)
        process.send_signal(signal.SIGHUP)
        wait_until("the reload", lambda: bool(logged(log, "config reloaded")), 60)
        (installed,) = logged(log, "plugin installed")
        assert installed["plugin"] == f"resource plugin kubernetes v{PROVIDER_VERSION}"
        assert (home / "plugins" / f"resource-kubernetes-v{PROVIDER_VERSION}").is_dir()
        (restart,) = logged(log, "these settings need a restart to apply")
        assert restart["keys"] == ["max_parallel"]
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
