"""Drift made the way people make it: a real Kubernetes client against the real API server.

`Kubectl` wraps the `kubernetes` package's dynamic client with the three verbs people use
by hand (a JSON patch for `kubectl edit`, a merge patch for `kubectl label`/`scale`, a
delete), each under the field manager kubectl itself would use. The scenario functions
change a deployed stacks/k8s-baseline namespace; scripts/record-kubernetes-events and the
tests share them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import config as kube_config
from kubernetes.dynamic import DynamicClient

RBAC = "rbac.authorization.k8s.io/v1"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


class Kubectl:
    """What an operator does with kubectl, through the Python client."""

    def __init__(self, kubeconfig: Path) -> None:
        self.client = DynamicClient(kube_config.new_client_from_config(str(kubeconfig)))

    def _resource(self, api_version: str, kind: str) -> Any:
        return self.client.resources.get(api_version=api_version, kind=kind)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        return self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict()

    def edit(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        operations: list[dict[str, Any]],
    ) -> None:
        """`kubectl edit`: a JSON patch (RFC 6902), e.g. an item appended with `/-`."""
        self._resource(api_version, kind).patch(
            name=name, namespace=namespace, body=operations, content_type=JSON_PATCH,
            field_manager="kubectl-edit",
        )  # fmt: skip

    def merge(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        body: dict[str, Any],
        manager: str = "kubectl-patch",
    ) -> None:
        """`kubectl label`, `kubectl scale`, `kubectl patch --type merge`."""
        self._resource(api_version, kind).patch(
            name=name, namespace=namespace, body=body, content_type=MERGE_PATCH,
            field_manager=manager,
        )  # fmt: skip

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None) -> None:
        self._resource(api_version, kind).delete(name=name, namespace=namespace)


# -- what people do to a deployed k8s-baseline namespace -----------------------------


def escalate_role(kubectl: Kubectl, namespace: str) -> None:
    """`secrets` appended to the Role's resources: the provider's diff never sees it."""
    kubectl.edit(RBAC, "Role", "config-reader", namespace,
                 [{"op": "add", "path": "/rules/0/resources/-", "value": "secrets"}])  # fmt: skip


def add_mallory(kubectl: Kubectl, namespace: str) -> None:
    """User mallory appended to the RoleBinding's subjects."""
    subject = {"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}
    kubectl.edit(RBAC, "RoleBinding", "config-reader", namespace,
                 [{"op": "add", "path": "/subjects/-", "value": subject}])  # fmt: skip


def widen_cluster_role(kubectl: Kubectl, namespace: str) -> None:
    """A whole wildcard rule appended to the ClusterRole."""
    rule = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
    kubectl.edit(RBAC, "ClusterRole", f"{namespace}-node-viewer", None,
                 [{"op": "add", "path": "/rules/-", "value": rule}])  # fmt: skip


def make_privileged(kubectl: Kubectl, namespace: str) -> None:
    """The web container made privileged (the server insists that privilege escalation
    be allowed too)."""
    context = "/spec/template/spec/containers/0/securityContext"
    kubectl.edit("apps/v1", "Deployment", "web", namespace, [
        {"op": "replace", "path": f"{context}/allowPrivilegeEscalation", "value": True},
        {"op": "add", "path": f"{context}/privileged", "value": True},
    ])  # fmt: skip


def share_host(kubectl: Kubectl, namespace: str) -> None:
    """The pods moved into the host's network and PID namespaces, the host's root mounted,
    and SYS_ADMIN added to the container's capabilities."""
    spec = "/spec/template/spec"
    kubectl.edit("apps/v1", "Deployment", "web", namespace, [
        {"op": "add", "path": f"{spec}/hostNetwork", "value": True},
        {"op": "add", "path": f"{spec}/hostPID", "value": True},
        {"op": "add", "path": f"{spec}/volumes",
         "value": [{"name": "host", "hostPath": {"path": "/"}}]},
        {"op": "add", "path": f"{spec}/containers/0/volumeMounts",
         "value": [{"name": "host", "mountPath": "/host"}]},
        {"op": "add", "path": f"{spec}/containers/0/securityContext/capabilities",
         "value": {"add": ["SYS_ADMIN"]}},
    ])  # fmt: skip


def allow_all_ingress(kubectl: Kubectl, namespace: str) -> None:
    """An empty ingress rule appended to the NetworkPolicy: it admits everything."""
    kubectl.edit("networking.k8s.io/v1", "NetworkPolicy", "web-ingress", namespace,
                 [{"op": "add", "path": "/spec/ingress/-", "value": {}}])  # fmt: skip


def expose_service(kubectl: Kubectl, namespace: str) -> None:
    """The Service turned into a NodePort (the server then assigns a node port)."""
    kubectl.merge("v1", "Service", "web", namespace, {"spec": {"type": "NodePort"}})


def change_config(kubectl: Kubectl, namespace: str) -> None:
    """A ConfigMap value changed, and a label added to it."""
    change = {"data": {"LOG_LEVEL": "debug"}, "metadata": {"labels": {"team": "ops"}}}
    kubectl.merge("v1", "ConfigMap", "app-config", namespace, change)


def scale(kubectl: Kubectl, namespace: str, replicas: int = 3) -> None:
    """`kubectl scale deployment web --replicas 3`."""
    kubectl.merge("apps/v1", "Deployment", "web", namespace, {"spec": {"replicas": replicas}},
                  manager="kubectl")  # fmt: skip


def rotate_secret(kubectl: Kubectl, namespace: str, value: str) -> None:
    """The Secret's token replaced by hand."""
    kubectl.merge("v1", "Secret", "app-secret", namespace, {"stringData": {"API_TOKEN": value}})


def relabel(kubectl: Kubectl, namespace: str) -> None:
    """`kubectl label --overwrite configmap app-config app=legacy`: another field manager
    now owns a label Pulumi applies, so Pulumi's next apply meets a field conflict."""
    kubectl.merge("v1", "ConfigMap", "app-config", namespace,
                  {"metadata": {"labels": {"app": "legacy"}}}, manager="kubectl-label")  # fmt: skip


# Every kind of drift above but the secret and the label conflict, made in one go.
ALL_DRIFT = (escalate_role, add_mallory, widen_cluster_role, make_privileged, share_host,
             allow_all_ingress, expose_service, change_config, scale)  # fmt: skip
