"""Kubernetes end to end: the real provider against a real API server, drift made with a
real client, driftwarden run as users run it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.k8s import outofband
from tests.k8s.conftest import API_TOKEN, KubeFleet
from tests.notify.conftest import HttpEndpoint

pytestmark = pytest.mark.engine


def changes_by_resource(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`Kind/name` -> the change, e.g. `Role/config-reader`."""
    return {f"{c['type'].rsplit(':', 1)[-1]}/{c['urn'].rsplit('::', 1)[-1]}": c
            for c in result["changes"]}  # fmt: skip


def props(change: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {prop["path"]: prop for prop in change["properties"]}


def test_a_fresh_deploy_scans_in_sync_also_after_the_controllers_ran(k8s: KubeFleet) -> None:
    stack = k8s.deploy()
    k8s.wait_for_controllers(stack)  # status, revision annotation, managed fields
    scan = k8s.scan("--json")
    assert scan.code == 0, scan.stdout + scan.stderr
    assert [r["status"] for r in scan.json["results"]] == ["in_sync", "in_sync"]


def test_privilege_escalation_the_provider_diff_hides_is_reported(k8s: KubeFleet) -> None:
    stack = k8s.deploy()
    outofband.escalate_role(k8s.kubectl, stack.namespace)
    outofband.add_mallory(k8s.kubectl, stack.namespace)
    outofband.widen_cluster_role(k8s.kubectl, stack.namespace)

    # What `pulumi refresh --preview-only` itself says: nothing changed.
    plain = k8s.pulumi(stack, "refresh", "--preview-only", "--json")
    assert json.loads(plain.stdout)["changeSummary"] == {"same": 12}

    scan = k8s.scan("--check", "drift", "--json")
    assert scan.code == 3, scan.stderr
    changes = changes_by_resource(scan.result("web", "drift"))
    assert set(changes) == {"Role/config-reader", "RoleBinding/config-reader",
                            "ClusterRole/node-viewer"}  # fmt: skip
    assert props(changes["Role/config-reader"]) == {
        "rules[0].resources[1]": {
            "path": "rules[0].resources[1]", "kind": "add", "expected": None,
            "actual": "secrets", "secret": False, "source": "outputs",
            "severity": "critical", "rule": "RBAC access to secrets granted",
        }
    }  # fmt: skip
    mallory = props(changes["RoleBinding/config-reader"])["subjects[1]"]
    assert mallory["actual"]["name"] == "mallory"
    assert (mallory["source"], mallory["severity"]) == ("outputs", "high")
    wildcard = props(changes["ClusterRole/node-viewer"])["rules[1]"]
    assert (wildcard["severity"], wildcard["rule"]) == ("critical", "RBAC wildcard granted")
    # Most severe first.
    assert changes_by_resource(scan.result("web", "drift"))
    assert scan.result("web", "drift")["changes"][0]["severity"] == "critical"

    table = k8s.scan("--check", "drift")
    assert "rules[0].resources[1] (add, outputs only)" in table.stdout
    show = k8s.cli("drift", "show", "web", "--json")
    findings = {f["path"]: f for f in json.loads(show.stdout)["findings"]}
    assert findings["rules[0].resources[1]"]["source"] == "outputs"
    assert findings["subjects[1]"]["severity"] == "high"


def test_workload_network_service_and_secret_drift_is_rated_without_noise(
    k8s: KubeFleet,
) -> None:
    stack = k8s.deploy()
    k8s.wait_for_controllers(stack)
    rotated = "rotated-by-hand-8e2c"
    for drift in (outofband.make_privileged, outofband.share_host, outofband.allow_all_ingress,
                  outofband.expose_service, outofband.change_config, outofband.scale):  # fmt: skip
        drift(k8s.kubectl, stack.namespace)
    outofband.rotate_secret(k8s.kubectl, stack.namespace, rotated)

    scan = k8s.scan("--check", "drift", "--json")
    assert scan.code == 3, scan.stderr
    changes = changes_by_resource(scan.result("web", "drift"))
    web = props(changes["Deployment/web"])
    context = "spec.template.spec.containers[0].securityContext"
    assert web[f"{context}.privileged"]["severity"] == "critical"
    assert web[f"{context}.privileged"]["source"] == "outputs"
    assert web[f"{context}.allowPrivilegeEscalation"]["rule"] == "privilege escalation allowed"
    assert (web["spec.replicas"]["expected"], web["spec.replicas"]["actual"]) == (1, 3)
    pod = "spec.template.spec"
    assert web[f"{pod}.hostPID"]["severity"] == "critical"
    assert web[f"{pod}.hostNetwork"]["rule"] == "host network shared"
    (volume,) = web[f"{pod}.volumes"]["actual"]
    assert volume["hostPath"]["path"] == "/"
    assert web[f"{pod}.volumes"]["rule"] == "host path mounted"
    assert web[f"{context}.capabilities"]["severity"] == "critical"
    ingress = props(changes["NetworkPolicy/web-ingress"])["spec.ingress[1]"]
    assert (ingress["actual"], ingress["severity"]) == ({}, "high")
    assert props(changes["Service/web"])["spec.type"]["severity"] == "medium"
    config = props(changes["ConfigMap/app-config"])
    assert config["data.LOG_LEVEL"]["actual"] == "debug"
    assert config["metadata.labels.team"]["source"] == "outputs"
    token = props(changes["Secret/app-secret"])["data.API_TOKEN"]
    assert token["secret"] is True
    assert (token["expected"], token["actual"], token["severity"]) == (
        "[secret]", "[secret]", "high",
    )  # fmt: skip
    paths = [p for change in changes.values() for p in props(change)]
    noise = ("metadata.managedFields", "metadata.resourceVersion", "metadata.generation",
             "status", "__inputs")  # fmt: skip
    assert not [p for p in paths if p.startswith(noise)]
    everything = scan.stdout + scan.stderr + k8s.scan("--check", "drift").stdout
    for secret in (API_TOKEN, rotated):
        assert secret not in everything


def test_ignore_rules_silence_a_path_and_config_check_shows_them(k8s: KubeFleet) -> None:
    k8s.tables = (
        '[[ignore]]\ntype = "kubernetes:apps/v1:Deployment"\npath = "spec.replicas"\n'
        'reason = "the autoscaler owns replicas"\n'
    )
    stack = k8s.deploy()
    outofband.scale(k8s.kubectl, stack.namespace, replicas=5)
    scan = k8s.scan("--check", "drift", "--json")
    assert scan.code == 0, scan.stdout
    check = k8s.cli("config", "check", "--json")
    plan = json.loads(check.stdout)
    assert plan["plugins"] == [{
        "kind": "resource", "name": "kubernetes", "version": "4.25.0",
        "path": str(k8s.cluster.provider if k8s.cluster else ""), "status": "installed",
    }]  # fmt: skip
    mine = {"type": "kubernetes:apps/v1:Deployment", "path": "spec.replicas",
            "reason": "the autoscaler owns replicas", "builtin": False}  # fmt: skip
    assert mine in plan["ignore"]
    text = k8s.cli("config", "check").stdout
    assert "the autoscaler owns replicas ([[ignore]])" in text
    assert "metadata.managedFields" in text


def test_a_missing_plugin_fails_with_one_line_naming_it_and_the_fix(
    k8s: KubeFleet, tmp_path: Path
) -> None:
    k8s.deploy()
    k8s.plugins = False
    k8s.pulumi_home = tmp_path / "empty-home"  # never had the plugin
    k8s.write_config()
    scan = k8s.scan("--check", "drift", "--json")
    assert scan.code == 1
    error = scan.result("web", "drift")["error"]
    assert "resource plugin kubernetes v4.25.0 is not installed" in error
    assert "[[plugins]]" in error
    assert "\n" not in error


def test_config_check_installs_plugins_into_pulumi_home(k8s: KubeFleet, tmp_path: Path) -> None:
    k8s.pulumi_home = tmp_path / "fresh-home"
    k8s.write_config()
    first = json.loads(k8s.cli("config", "check", "--json").stdout)
    assert [p["status"] for p in first["plugins"]] == ["installed now"]
    binary = (
        k8s.pulumi_home / "plugins" / "resource-kubernetes-v4.25.0" / "pulumi-resource-kubernetes"
    )
    assert binary.is_file()
    again = json.loads(k8s.cli("config", "check", "--json").stdout)
    assert [p["status"] for p in again["plugins"]] == ["installed"]


def configure_remediation(k8s: KubeFleet, endpoint: HttpEndpoint) -> None:
    k8s.write_config(
        f'\n[notifications]\ndefault_targets = ["hook"]\n\n'
        f'[[targets]]\nname = "hook"\nurls = ["{endpoint.url()}"]\n'
    )


def audit_actions(k8s: KubeFleet) -> list[str]:
    lines = k8s.cli("audit", "export").stdout.splitlines()
    return [json.loads(line)["activity_name"] for line in lines]


def test_a_field_conflict_keeps_its_cause_and_patch_force_resolves_it(
    k8s: KubeFleet, http_endpoint: HttpEndpoint
) -> None:
    stack = k8s.deploy()
    configure_remediation(k8s, http_endpoint)
    outofband.relabel(k8s.kubectl, stack.namespace)  # kubectl label --overwrite app=legacy

    dry = k8s.cli("remediate", "web", "--mode", "up", "--dry-run", "--json")
    assert dry.code == 1, dry.stdout
    error = json.loads(dry.stdout)["error"]
    assert "app-config (kubernetes:core/v1:ConfigMap)" in error
    assert 'conflict with "kubectl-label"' in error
    assert ".metadata.labels.app" in error
    assert "error occurred" not in error
    assert "PULUMI_K8S_ENABLE_PATCH_FORCE" in error  # the hint says how to get past it

    k8s.stacks = [replace(stack, env={**stack.env, "PULUMI_K8S_ENABLE_PATCH_FORCE": "true"})]
    configure_remediation(k8s, http_endpoint)
    done = k8s.cli("remediate", "web", "--mode", "up", "--yes", "--json")
    assert done.code == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    config_map = k8s.kubectl.get("v1", "ConfigMap", "app-config", stack.namespace)
    assert config_map["metadata"]["labels"]["app"] == "web"


def test_up_leaves_the_escalation_in_place_and_says_so(
    k8s: KubeFleet, http_endpoint: HttpEndpoint
) -> None:
    # Patch-force: `up` takes back the replicas that `kubectl scale` now owns.
    stack = k8s.deploy(PULUMI_K8S_ENABLE_PATCH_FORCE="true")
    configure_remediation(k8s, http_endpoint)
    outofband.escalate_role(k8s.kubectl, stack.namespace)
    outofband.scale(k8s.kubectl, stack.namespace)  # something `up` does undo

    result = k8s.cli("remediate", "web", "--mode", "up", "--yes", "--json")
    assert result.code == 1, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "incomplete", data["error"]
    assert data["remaining"] == ["config-reader: rules[0].resources[1]"]
    assert [c["urn"].rsplit("::", 1)[-1] for c in data["plan"]] == ["web"]
    # `up` put the replicas back and left the escalation where it was.
    live_web = k8s.kubectl.get("apps/v1", "Deployment", "web", stack.namespace)
    assert live_web["spec"]["replicas"] == 1
    role = k8s.kubectl.get("rbac.authorization.k8s.io/v1", "Role", "config-reader",
                           stack.namespace)  # fmt: skip
    assert role["rules"][0]["resources"] == ["configmaps", "secrets"]

    assert "remediation.incomplete" in audit_actions(k8s)
    assert "remediation.succeeded" not in audit_actions(k8s)
    titles = [request.json()["title"] for request in http_endpoint.requests]
    assert any("1 difference(s) remain" in title for title in titles), titles

    # The next `up` has nothing left to plan, and still does not call it done.
    again = k8s.cli("remediate", "web", "--mode", "up", "--yes", "--json")
    assert again.code == 1
    assert json.loads(again.stdout)["status"] == "incomplete"
    assert json.loads(again.stdout)["plan"] == []
