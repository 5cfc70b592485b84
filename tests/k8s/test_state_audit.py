"""The state's own audit trail on the real Kubernetes provider: what a `pulumi refresh`
takes into the state after someone made a container privileged is audited property by
property, raises a finding of its own, and ends the drift finding as `accepted` — never
as resolved; a `pulumi state delete` and a checkpoint edited by hand are audited as edits
that no update accounts for; `pulumi import` of a cluster-admin binding is accepted too."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.k8s import outofband
from tests.k8s.conftest import KubeFleet
from tests.k8s.test_audit import file_source
from tests.notify.conftest import HttpEndpoint

pytestmark = pytest.mark.engine

PRIVILEGED = "spec.template.spec.containers[0].securityContext.privileged"


def notifying(endpoint: HttpEndpoint) -> str:
    return (f'\n[notifications]\ndefault_targets = ["hook"]\n\n'
            f'[[targets]]\nname = "hook"\nurls = ["{endpoint.url()}"]\n')  # fmt: skip


def actions(k8s: KubeFleet) -> list[dict[str, Any]]:
    return [json.loads(line) for line in k8s.cli("audit", "export").stdout.splitlines()]


def test_a_refresh_that_launders_an_escalation_is_accepted_not_resolved(
    k8s: KubeFleet, http_endpoint: HttpEndpoint
) -> None:
    stack = k8s.deploy()
    k8s.tables = notifying(http_endpoint)
    k8s.write_config()
    k8s.wait_for_controllers(stack)
    outofband.make_privileged(k8s.kubectl, stack.namespace)
    drifted = k8s.scan("--check", "drift", "--json")
    assert drifted.code == 3
    shown = k8s.cli("drift", "show", "web", "--json").json["findings"]
    (escalation,) = [f for f in shown if f["path"] == PRIVILEGED]
    assert escalation["severity"] == "critical"

    k8s.pulumi(stack, "refresh", "--yes", "--skip-preview")  # "to fix the noise"
    http_endpoint.requests.clear()
    after = k8s.scan("--check", "drift", "--json")
    assert PRIVILEGED not in json.dumps(after.json)  # the drift check sees nothing now

    findings = k8s.cli("drift", "show", "web", "--json").json["findings"]
    (accepted,) = [f for f in findings if f["path"] == PRIVILEGED]
    assert (accepted["check"], accepted["severity"]) == ("state", "critical")
    assert accepted["attribution"]["kind"] == "update"
    assert accepted["attribution"]["operation"] == "refresh"
    assert accepted["actual"] is True
    ended = [e for e in actions(k8s) if e["activity_name"] == "finding.accepted"]
    assert any(PRIVILEGED in json.dumps(e) and escalation["finding_id"] in json.dumps(e)
               for e in ended)  # fmt: skip
    assert not any(e["activity_name"] == "finding.resolved" and escalation["finding_id"] in
                   json.dumps(e) for e in actions(k8s))  # fmt: skip

    history = k8s.cli("history", "--stack", "web", "--json").json["state_changes"]
    refresh = [c for c in history if c["cause"] == "refresh" and c["path"] == PRIVILEGED]
    assert refresh[0]["before"] is None
    assert refresh[0]["after"] is True
    assert refresh[0]["severity"] == "critical"
    messages = " ".join(request.body.decode() for request in http_endpoint.requests)
    assert "accepted into the state, not fixed" in messages
    assert "dangerous values accepted into state" in messages

    # The live object is fixed and the state follows: the accepted finding resolves.
    context = "/spec/template/spec/containers/0/securityContext"
    k8s.kubectl.edit("apps/v1", "Deployment", "web", stack.namespace, [
        {"op": "remove", "path": f"{context}/privileged"},
    ])  # fmt: skip
    k8s.pulumi(stack, "refresh", "--yes", "--skip-preview")
    k8s.scan("--check", "drift", "--json")
    still = k8s.cli("drift", "show", "web", "--json").json["findings"]
    assert not [f for f in still if f["path"] == PRIVILEGED]


def test_state_edits_and_an_import_are_audited(k8s: KubeFleet) -> None:
    stack = k8s.deploy()
    k8s.wait_for_controllers(stack)
    assert k8s.scan("--check", "drift").code == 0

    policy = (
        "urn:pulumi:dev::k8s-baseline::kubernetes:networking.k8s.io/v1:NetworkPolicy::web-ingress"
    )
    k8s.pulumi(stack, "state", "delete", policy, "--yes")
    k8s.scan("--check", "drift", "--json")
    edits = [e for e in actions(k8s) if e["activity_name"] == "state.edited"]
    assert len(edits) == 1
    changes = k8s.cli("history", "--stack", "web", "--json").json["state_changes"]
    deleted = [c for c in changes if c["cause"] == "edit" and c["urn"] == policy]
    assert deleted[0]["change"] == "delete"

    state_file = k8s.state_dir / "backend" / ".pulumi" / "stacks" / "k8s-baseline" / "dev.json"
    checkpoint = json.loads(state_file.read_text())
    for resource in checkpoint["checkpoint"]["latest"]["resources"]:
        if resource["urn"].endswith("ConfigMap::app-config"):
            resource["outputs"]["data"]["LOG_LEVEL"] = "edited-by-hand"
    state_file.write_text(json.dumps(checkpoint))
    k8s.scan("--check", "drift", "--json")
    changes = k8s.cli("history", "--stack", "web", "--json").json["state_changes"]
    edited = [c for c in changes if c["path"] == "data.LOG_LEVEL"]
    assert (edited[0]["cause"], edited[0]["after"]) == ("edit", "edited-by-hand")
    assert len([e for e in actions(k8s) if e["activity_name"] == "state.edited"]) == 2

    assert k8s.cluster is not None
    k8s.tables = file_source(k8s)  # the inventory: what no stack manages is a finding
    k8s.write_config()
    name = f"import-{stack.namespace}"
    k8s.cluster.kubectl("create", "clusterrolebinding", name, "--clusterrole=cluster-admin",
                        "--user=eve")  # fmt: skip
    try:
        k8s.scan("--check", "drift", "--json")
        unmanaged = k8s.cli("drift", "show", "web", "--json").json["findings"]
        assert [f["severity"] for f in unmanaged if name in f["urn"]] == ["critical"]
        k8s.pulumi(stack, "import", "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
                   "imported", name, "--yes", "--generate-code=false")  # fmt: skip
        k8s.scan("--check", "drift", "--json")
    finally:
        k8s.cluster.kubectl("delete", "clusterrolebinding", name, "--ignore-not-found")
    findings = k8s.cli("drift", "show", "web", "--json").json["findings"]
    assert not [f for f in findings if f["check"] == "drift" and name in f["urn"]], (
        "adopted into the stack: no longer unmanaged"
    )
    resolved = [e for e in actions(k8s) if e["activity_name"] == "finding.resolved"]
    assert any(name in json.dumps(e) for e in resolved)
    imported = [f for f in findings if f["check"] == "state" and "imported" in f["urn"]]
    assert imported, findings
    assert imported[0]["severity"] == "critical"
    assert imported[0]["attribution"]["operation"] == "resource-import"
