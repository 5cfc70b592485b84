"""The cluster's own audit log joined to drift, on the real API server with real kubectl:
the person behind a difference is named (mallory with her own token; the admin
impersonating eve: both identities) in `scan --json`, `drift show`, the report and the
notification; what was created beside the stack (a cluster-admin binding, a RoleBinding)
is found, rated and attributed, and resolved once deleted; a check that cannot list its
scope fails and resolves nothing; the daemon checks within seconds of a write, from the
log file and from the audit webhook, whose endpoint refuses what it must."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.cli import DRIFTWARDEN
from tests.k8s.conftest import WEBHOOK_SOURCE, Cluster, KubeFleet, KubeStack
from tests.notify.conftest import HttpEndpoint
from tests.web.conftest import serve, stop

pytestmark = pytest.mark.engine

SSH_PORT = '[{"op":"add","path":"/spec/ports/-","value":{"name":"ssh","port":22}}]'


def file_source(k8s: KubeFleet) -> str:
    assert k8s.cluster is not None
    return f'\n[[audit_sources]]\nname = "cluster"\npath = "{k8s.cluster.audit_log}"\n'


def notifying(endpoint: HttpEndpoint) -> str:
    return (f'\n[notifications]\ndefault_targets = ["hook"]\n\n'
            f'[[targets]]\nname = "hook"\nurls = ["{endpoint.url()}"]\n')  # fmt: skip


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {change["urn"].rsplit("::", 1)[-1]: change for change in result["changes"]}


def test_the_people_behind_drift_and_what_they_created_beside_the_stack(
    k8s: KubeFleet, http_endpoint: HttpEndpoint
) -> None:
    assert k8s.cluster is not None
    stack = k8s.deploy()
    k8s.tables = file_source(k8s) + notifying(http_endpoint)
    k8s.write_config()
    k8s.wait_for_controllers(stack)
    quiet = k8s.scan("--check", "drift", "--json")
    assert quiet.code == 0, quiet.stdout + quiet.stderr

    ns, backdoor = stack.namespace, f"backdoor-{stack.namespace}"
    k8s.cluster.kubectl("-n", ns, "patch", "service", "web", "--type=json", f"-p={SSH_PORT}",
                        who="mallory")  # fmt: skip
    k8s.cluster.kubectl("-n", ns, "patch", "configmap", "app-config", "--type=merge",
                        '-p={"data":{"LOG_LEVEL":"debug"}}', who="eve")  # fmt: skip
    k8s.cluster.kubectl("create", "clusterrolebinding", backdoor, "--clusterrole=cluster-admin",
                        "--user=eve", who="mallory")  # fmt: skip
    try:
        k8s.cluster.kubectl("-n", ns, "create", "rolebinding", "sneaky",
                            "--role=config-reader", "--user=eve", who="eve")  # fmt: skip
        _drift_is_attributed(k8s, stack, backdoor, http_endpoint)
        _an_ignore_rule_silences_an_unmanaged_kind(k8s, http_endpoint, stack, backdoor)
        _a_scope_that_cannot_be_listed_resolves_nothing(k8s, backdoor)
    finally:
        k8s.cluster.kubectl("delete", "clusterrolebinding", backdoor, "--ignore-not-found")
    k8s.tables = file_source(k8s) + notifying(http_endpoint)
    k8s.write_config()
    gone = k8s.scan("--check", "drift", "--json")
    assert backdoor not in by_name(gone.result("web", "drift"))
    resolved = [json.loads(line) for line in k8s.cli("audit", "export").stdout.splitlines()
                if "finding.resolved" in line]  # fmt: skip
    assert any(backdoor in json.dumps(event) for event in resolved)


def _drift_is_attributed(
    k8s: KubeFleet, stack: KubeStack, backdoor: str, endpoint: HttpEndpoint
) -> None:
    scan = k8s.scan("--check", "drift", "--json")
    assert scan.code == 3, scan.stderr
    changes = by_name(scan.result("web", "drift"))
    service = changes["web"] if changes["web"]["type"].endswith(":Service") else None
    assert service is not None, changes.keys()
    who = service["attribution"]
    assert (who["kind"], who["user"], who["verb"]) == ("platform", "mallory", "patch")
    assert who["user_agent"].startswith("kubectl/v1.33.13")
    assert who["field_manager"] == "kubectl-patch"
    assert who["source_ips"] == ["127.0.0.1"]
    config = changes["app-config"]["attribution"]
    assert (config["user"], config["impersonated_user"]) == ("admin", "eve")
    assert "system:masters" in config["impersonated_groups"]

    created = changes[backdoor]
    assert created["change"] == "create"
    assert created["severity"] == "critical"
    assert created["attribution"]["user"] == "mallory"
    assert created["attribution"]["verb"] == "create"
    (summary,) = created["properties"]
    assert summary["actual"]["roleRef"]["name"] == "cluster-admin"
    assert summary["source"] == "inventory"
    sneaky = changes[f"{stack.namespace}/sneaky"]
    assert sneaky["severity"] == "high"
    assert (sneaky["attribution"]["user"], sneaky["attribution"]["impersonated_user"]) == (
        "admin", "eve",
    )  # fmt: skip

    (source,) = k8s.cli("status", "--json").json["audit_sources"]
    assert (source["source"], source["feeds"], source["complete"]) == ("cluster", ["log"], True)
    assert source["kept"] > 0
    assert source["dropped"] > source["kept"]  # reads are not logged; machinery is dropped
    checked = k8s.cli("config", "check", "--json").json["problems"]
    assert [p for p in checked if p["subject"] == "audit source 'cluster'"] == []
    shown = k8s.cli("drift", "show", "web", "--json").json["findings"]
    users = {(f["attribution"] or {}).get("user") for f in shown if "Service" in f["type"]}
    assert users == {"mallory"}
    (sneaky_finding,) = [f for f in shown if f["urn"].endswith("/sneaky")]
    server, url = serve(k8s, "--listen", "127.0.0.1:0")
    try:
        page = f"{url}/stacks/web/findings/{sneaky_finding['finding_id']}"
        with urllib.request.urlopen(page, timeout=30) as response:
            html = response.read().decode()
    finally:
        stop(server)
    assert "created by admin as eve with kubectl/v1.33.13" in html
    assert "acting as" in html
    assert "system:masters" in html
    assert sneaky_finding["attribution"]["event_id"] in html
    report = k8s.cli("report", "--format", "md")
    assert "created by mallory with kubectl/v1.33.13" in report.stdout
    assert "changed by admin as eve with kubectl/v1.33.13" in report.stdout
    messages = " ".join(request.body.decode() for request in endpoint.requests)
    assert "changed by mallory with kubectl/v1.33.13 at" in messages
    assert "created by mallory with kubectl/v1.33.13 at" in messages


def _an_ignore_rule_silences_an_unmanaged_kind(
    k8s: KubeFleet, endpoint: HttpEndpoint, stack: KubeStack, backdoor: str
) -> None:
    binding = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
    silenced = (f'\n[[ignore]]\ntype = "{binding}"\npath = "*"\n'
                'reason = "bindings are reviewed elsewhere"\n')  # fmt: skip
    k8s.tables = file_source(k8s) + notifying(endpoint) + silenced
    k8s.write_config()
    quiet = k8s.scan("--check", "drift", "--json")
    names = by_name(quiet.result("web", "drift"))
    assert backdoor not in names
    assert f"{stack.namespace}/sneaky" in names  # a RoleBinding still counts
    k8s.tables = file_source(k8s) + notifying(endpoint)
    k8s.write_config()
    assert backdoor in by_name(k8s.scan("--check", "drift", "--json").result("web", "drift"))


def _a_scope_that_cannot_be_listed_resolves_nothing(k8s: KubeFleet, backdoor: str) -> None:
    assert k8s.cluster is not None
    broken = k8s.root / "unreachable.kubeconfig"
    config = json.loads(k8s.cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    broken.write_text(json.dumps(config))
    k8s.tables = file_source(k8s) + f'kubeconfig = "{broken}"\n'
    k8s.write_config()
    failed = k8s.scan("--check", "drift", "--json")
    assert failed.code == 1
    error = failed.result("web", "drift")["error"]
    assert error.startswith("audit source: the API server https://127.0.0.1:1 cannot be reached")
    still = k8s.cli("drift", "show", "web", "--json").json["findings"]
    assert any(backdoor in finding["urn"] for finding in still)


def wait_for(predicate: Any, timeout: float) -> float:
    """Seconds until `predicate()` held (AssertionError after `timeout`)."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "not within the time allowed"
        time.sleep(0.2)
    return time.monotonic() - started


def test_the_daemon_checks_within_seconds_from_the_log_and_from_the_webhook(
    k8s: KubeFleet, http_endpoint: HttpEndpoint
) -> None:
    assert k8s.cluster is not None
    cluster = k8s.cluster
    stack = k8s.deploy(schedule="every 1h")
    k8s.wait_for_controllers(stack)
    webhook = (f'\n[[audit_sources]]\nname = "{WEBHOOK_SOURCE}"\n'
               f'webhook_token_file = "{cluster.webhook_token_file}"\n')  # fmt: skip
    listen = (f'\n[web]\nlisten = "127.0.0.1:{cluster.webhook_port}"\n'
              + cluster.webhook_receiver_tls())  # fmt: skip
    for source, value in (("log", file_source(k8s)), ("webhook", webhook + listen)):
        k8s.tables = value + notifying(http_endpoint)
        k8s.write_config()
        daemon = subprocess.Popen(
            [str(DRIFTWARDEN), "--config", str(k8s.config_path), "run", "--json-logs"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            # The first scheduled check (never scanned: at once) reads what the stack
            # manages: from then on its objects' writes are its own.
            wait_for(lambda: _checks(k8s) >= 1, 120)
            http_endpoint.requests.clear()
            cluster.kubectl("-n", stack.namespace, "patch", "configmap", "app-config",
                            "--type=merge", f'-p={{"data":{{"LOG_LEVEL":"{source}"}}}}',
                            who="mallory")  # fmt: skip
            try:
                took = wait_for(lambda: notified_naming(http_endpoint, "mallory"), 60)
            except AssertionError:
                daemon.send_signal(signal.SIGTERM)
                logs = daemon.communicate(timeout=60)[0][-3000:]
                raise AssertionError(f"{source}: not notified; the daemon said {logs}") from None
            assert took < 30, f"{source}: notified after {took:.1f} s"
            if source == "webhook":
                token = cluster.webhook_token_file.read_text().strip()
                _the_webhook_refuses_what_it_must(cluster, token)
        finally:
            daemon.send_signal(signal.SIGTERM)
            logs, _ = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, logs[-2000:]


def _checks(k8s: KubeFleet) -> int:
    """Checks finished."""
    ran = k8s.cli("history", "--json")
    if ran.code != 0:
        return 0
    return sum(op["status"] == "succeeded" for op in ran.json["operations"])


def notified_naming(endpoint: HttpEndpoint, person: str) -> bool:
    return any(f"changed by {person} with kubectl" in request.body.decode()
               for request in list(endpoint.requests))  # fmt: skip


def _the_webhook_refuses_what_it_must(cluster: Cluster, token: str) -> None:
    url = f"https://127.0.0.1:{cluster.webhook_port}/ingest/audit/{WEBHOOK_SOURCE}"
    trusted = ssl.create_default_context(cafile=str(cluster.ca))
    batch = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                        "items": []}).encode()  # fmt: skip

    def post(body: bytes, **headers: str) -> int:
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10, context=trusted) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    assert post(batch) == 401
    assert post(batch, Authorization="Bearer not-the-token-at-all") == 401
    bearer = f"Bearer {token}"
    assert post(batch, Authorization=bearer) == 200
    assert post(b'{"kind": "Event"}', Authorization=bearer) == 400
    assert post(b"{", Authorization=bearer) == 400
    huge = {"Authorization": bearer, "Content-Length": str(64 * 1024 * 1024)}
    assert post(b"x" * 10, **huge) == 413
