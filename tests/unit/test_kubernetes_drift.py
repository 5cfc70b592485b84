"""Kubernetes drift on events recorded from the real provider and API server
(scripts/record-kubernetes-events): what the provider's diff hides, the noise a live
object carries, the risk rules, and the cause of a failed apply."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from driftwarden.domain.model import REDACTED, PropertyChange, ResourceChange
from driftwarden.drift import extract_changes
from driftwarden.drift.noise import Ignore, builtin_noise, without_noise
from driftwarden.drift.rules import BUILTIN_RULES, assess_change
from driftwarden.engine.errors import classify_failure, first_error
from tests.conftest import EVENTS, load_events

ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
SERVER_MANAGED = (
    "metadata.managedFields",
    "metadata.resourceVersion",
    "metadata.generation",
    "status",
    'metadata.annotations["deployment.kubernetes.io/revision"]',
)


def drift(log: str, ignores: list[Ignore] | None = None) -> dict[tuple[str, str], ResourceChange]:
    changes = extract_changes(load_events(log), compare_outputs=True)
    found = without_noise(changes, builtin_noise() if ignores is None else ignores)
    return {(change.type.rsplit(":", 1)[-1], change.name): change for change in found}


def properties(change: ResourceChange) -> dict[str, PropertyChange]:
    return {prop.path: prop for prop in change.properties}


def test_a_fresh_deploy_is_in_sync_after_the_controllers_ran() -> None:
    raw = extract_changes(load_events("k8s-refresh-in-sync"), compare_outputs=True)
    # The controllers did write to the live Deployment: status, a revision, managed fields…
    noisy = {prop.path for change in raw for prop in change.properties}
    assert any(path.startswith("status") for path in noisy)
    assert any(path.startswith("metadata.managedFields") for path in noisy)
    assert 'metadata.annotations["deployment.kubernetes.io/revision"]' in noisy
    # …none of which is drift.
    assert without_noise(raw, builtin_noise()) == []
    assert drift("k8s-refresh-in-sync") == {}


def test_the_provider_diff_alone_misses_the_escalation() -> None:
    """What `pulumi refresh --preview-only` shows: the Role and RoleBinding are `same`."""
    diff_only = extract_changes(load_events("k8s-refresh-drift"))
    assert {change.name for change in diff_only if change.type in (ROLE, BINDING)} == set()


def test_items_appended_to_rbac_lists_are_reported_from_the_outputs() -> None:
    found = drift("k8s-refresh-drift")
    role = properties(found["Role", "config-reader"])
    assert list(role) == ["rules[0].resources[1]"]
    secrets = role["rules[0].resources[1]"]
    assert (secrets.kind, secrets.expected, secrets.actual, secrets.source) == (
        "add", None, "secrets", "outputs",
    )  # fmt: skip
    binding = properties(found["RoleBinding", "config-reader"])
    assert binding["subjects[1]"].actual == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory",
    }  # fmt: skip
    assert binding["subjects[1]"].source == "outputs"
    cluster_role = properties(found["ClusterRole", "node-viewer"])
    assert cluster_role["rules[1]"].actual == {"apiGroups": ["*"], "resources": ["*"],
                                               "verbs": ["*"]}  # fmt: skip
    policy = properties(found["NetworkPolicy", "web-ingress"])
    assert policy["spec.ingress[1]"].actual == {}
    config_map = properties(found["ConfigMap", "app-config"])
    assert config_map["metadata.labels.team"].actual == "ops"  # a map key added


def test_a_state_refresh_does_not_launder_items_the_program_never_asked_for() -> None:
    """After someone ran `pulumi refresh`, the state's outputs hold the escalation too; the
    program's inputs do not, so the appended items are still drift."""
    found = drift("k8s-refresh-after-state-refresh")
    assert set(found) == {
        ("Role", "config-reader"),
        ("RoleBinding", "config-reader"),
        ("ClusterRole", "node-viewer"),
        ("NetworkPolicy", "web-ingress"),
    }
    secrets = properties(found["Role", "config-reader"])["rules[0].resources[1]"]
    assert (secrets.kind, secrets.actual, secrets.source) == ("add", "secrets", "outputs")
    assert properties(found["RoleBinding", "config-reader"])["subjects[1]"].actual["name"] == (
        "mallory"
    )
    # Values the refresh accepted into the state's inputs are no longer drift.
    assert ("Deployment", "web") not in found


def test_what_the_diff_reports_keeps_its_source_and_is_not_repeated() -> None:
    found = drift("k8s-refresh-drift")
    deployment = properties(found["Deployment", "web"])
    assert deployment["spec.replicas"].source == "diff"
    assert (deployment["spec.replicas"].expected, deployment["spec.replicas"].actual) == (1, 3)
    privileged = deployment["spec.template.spec.containers[0].securityContext.privileged"]
    assert (privileged.source, privileged.actual) == ("outputs", True)
    config_map = properties(found["ConfigMap", "app-config"])
    assert config_map["data.LOG_LEVEL"].source == "diff"
    # Each path once: the provider's copy of its inputs (`__inputs`) is not a second report.
    paths = [prop.path for change in found.values() for prop in change.properties]
    assert len(paths) == len(set(paths))
    assert not any(path.startswith("__inputs") for path in paths)


def test_no_server_managed_field_survives_the_noise_profile() -> None:
    for change in drift("k8s-refresh-drift").values():
        for prop in change.properties:
            assert not prop.path.startswith(SERVER_MANAGED), prop.path


def test_secret_data_changed_is_reported_redacted() -> None:
    secret = properties(drift("k8s-refresh-drift")["Secret", "app-secret"])
    (token,) = secret.values()
    assert token.path == "data.API_TOKEN"
    assert (token.expected, token.actual, token.secret) == (REDACTED, REDACTED, True)


def test_user_ignore_rules_remove_their_paths_before_anything_else() -> None:
    replicas = Ignore(path="spec.replicas", type="kubernetes:apps/v1:Deployment",
                      reason="the autoscaler owns it")  # fmt: skip
    labels = Ignore(path="metadata.labels", type="kubernetes:core/v1:ConfigMap", reason="teams")
    found = drift("k8s-refresh-drift", [*builtin_noise(), replicas, labels])
    assert "spec.replicas" not in properties(found["Deployment", "web"])
    assert list(properties(found["ConfigMap", "app-config"])) == ["data.LOG_LEVEL"]
    whole = Ignore(path="*", type="kubernetes:networking.k8s.io/v1:NetworkPolicy", reason="x")
    assert ("NetworkPolicy", "web-ingress") not in drift("k8s-refresh-drift",
                                                         [*builtin_noise(), whole])  # fmt: skip


def rated(found: dict[tuple[str, str], ResourceChange], key: tuple[str, str]) -> dict[str, str]:
    return {path: f"{a.severity.value}: {a.title}"
            for path, a in assess_change(BUILTIN_RULES, found[key]).items()}  # fmt: skip


@pytest.mark.parametrize(
    ("resource", "path", "rating"),
    [
        (("Role", "config-reader"), "rules[0].resources[1]",
         "critical: RBAC access to secrets granted"),
        (("RoleBinding", "config-reader"), "subjects[1]", "high: RBAC subject added"),
        (("ClusterRole", "node-viewer"), "rules[1]", "critical: RBAC wildcard granted"),
        (("Deployment", "web"), "spec.template.spec.containers[0].securityContext.privileged",
         "critical: container made privileged"),
        (("Deployment", "web"),
         "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
         "high: privilege escalation allowed"),
        (("Deployment", "web"), "spec.template.spec.hostPID",
         "critical: host PID namespace shared"),
        (("Deployment", "web"), "spec.template.spec.hostNetwork", "high: host network shared"),
        (("Deployment", "web"), "spec.template.spec.volumes", "high: host path mounted"),
        (("Deployment", "web"), "spec.template.spec.containers[0].securityContext.capabilities",
         "critical: SYS_ADMIN or ALL capabilities added"),
        (("NetworkPolicy", "web-ingress"), "spec.ingress[1]", "high: NetworkPolicy rule added"),
        (("Service", "web"), "spec.type", "medium: Service exposed outside the cluster"),
        (("Secret", "app-secret"), "data.API_TOKEN", "high: Secret data changed"),
    ],
)  # fmt: skip
def test_kubernetes_risk_rules_rate_the_real_drift(
    resource: tuple[str, str], path: str, rating: str
) -> None:
    assert rated(drift("k8s-refresh-drift"), resource)[path] == rating


def test_a_subject_added_to_a_cluster_admin_binding_is_critical() -> None:
    """The same recorded subject, on a binding whose live roleRef is cluster-admin."""
    binding = drift("k8s-refresh-drift")["RoleBinding", "config-reader"]
    live = json.loads(json.dumps(binding.live))
    assert live["roleRef"]["name"] == "config-reader"
    live["roleRef"] = {**live["roleRef"], "kind": "ClusterRole", "name": "cluster-admin"}
    admin = replace(binding, live=live)
    assert rated({("b", "b"): admin}, ("b", "b"))["subjects[1]"] == (
        "critical: cluster-admin granted"
    )


def test_a_field_conflict_keeps_its_whole_cause() -> None:
    output = (EVENTS / "k8s-preview-refresh-conflict.txt").read_text()
    events = load_events("k8s-preview-refresh-conflict")
    for error in (
        classify_failure(output, events, stack="fixture", backend_url="file:///x"),
        classify_failure(output, [], stack="fixture", backend_url="file:///x"),
    ):
        message = error.message
        assert message.startswith("pulumi failed: web (kubernetes:core/v1:Service): ")
        assert "Server-Side Apply field conflict" in message
        assert 'conflict with "kubectl-patch"' in message
        assert message.endswith(".spec.type")
        assert "error occurred" not in message
        assert "\n" not in message
        assert "PULUMI_K8S_ENABLE_PATCH_FORCE" in str(error.hint)


def test_first_error_prefers_the_resource_over_the_stack_summary() -> None:
    output = (EVENTS / "k8s-preview-refresh-conflict.txt").read_text()
    assert "preview failed" not in first_error(output).split(":")[0]
    assert first_error("error: could not read file\nmore") == "could not read file"
    assert first_error("") == "no output"
