"""Which Kubernetes kind a resource (its plural, as in an audit event's objectRef) is.

The built-in API's resources are known here (Kubernetes 1.33's discovery, the writable
ones); anything else (a CRD's) is asked of the API server's discovery once and kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from driftwarden.domain.errors import DriftwardenError
from driftwarden.sources.kubeapi import ApiResource

# (group, resource) -> kind, from kube-apiserver 1.33's discovery.
BUILTIN_KINDS: dict[tuple[str, str], str] = {
    ("", "configmaps"): "ConfigMap",
    ("", "endpoints"): "Endpoints",
    ("", "events"): "Event",
    ("", "limitranges"): "LimitRange",
    ("", "namespaces"): "Namespace",
    ("", "nodes"): "Node",
    ("", "persistentvolumeclaims"): "PersistentVolumeClaim",
    ("", "persistentvolumes"): "PersistentVolume",
    ("", "pods"): "Pod",
    ("", "podtemplates"): "PodTemplate",
    ("", "replicationcontrollers"): "ReplicationController",
    ("", "resourcequotas"): "ResourceQuota",
    ("", "secrets"): "Secret",
    ("", "serviceaccounts"): "ServiceAccount",
    ("", "services"): "Service",
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"):
        "MutatingWebhookConfiguration",
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"):
        "ValidatingAdmissionPolicy",
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"):
        "ValidatingAdmissionPolicyBinding",
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"):
        "ValidatingWebhookConfiguration",
    ("apiextensions.k8s.io", "customresourcedefinitions"): "CustomResourceDefinition",
    ("apiregistration.k8s.io", "apiservices"): "APIService",
    ("apps", "controllerrevisions"): "ControllerRevision",
    ("apps", "daemonsets"): "DaemonSet",
    ("apps", "deployments"): "Deployment",
    ("apps", "replicasets"): "ReplicaSet",
    ("apps", "statefulsets"): "StatefulSet",
    ("autoscaling", "horizontalpodautoscalers"): "HorizontalPodAutoscaler",
    ("batch", "cronjobs"): "CronJob",
    ("batch", "jobs"): "Job",
    ("certificates.k8s.io", "certificatesigningrequests"): "CertificateSigningRequest",
    ("coordination.k8s.io", "leases"): "Lease",
    ("discovery.k8s.io", "endpointslices"): "EndpointSlice",
    ("events.k8s.io", "events"): "Event",
    ("flowcontrol.apiserver.k8s.io", "flowschemas"): "FlowSchema",
    ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"):
        "PriorityLevelConfiguration",
    ("networking.k8s.io", "ingressclasses"): "IngressClass",
    ("networking.k8s.io", "ingresses"): "Ingress",
    ("networking.k8s.io", "networkpolicies"): "NetworkPolicy",
    ("node.k8s.io", "runtimeclasses"): "RuntimeClass",
    ("policy", "poddisruptionbudgets"): "PodDisruptionBudget",
    ("rbac.authorization.k8s.io", "clusterrolebindings"): "ClusterRoleBinding",
    ("rbac.authorization.k8s.io", "clusterroles"): "ClusterRole",
    ("rbac.authorization.k8s.io", "rolebindings"): "RoleBinding",
    ("rbac.authorization.k8s.io", "roles"): "Role",
    ("scheduling.k8s.io", "priorityclasses"): "PriorityClass",
    ("storage.k8s.io", "csidrivers"): "CSIDriver",
    ("storage.k8s.io", "csinodes"): "CSINode",
    ("storage.k8s.io", "csistoragecapacities"): "CSIStorageCapacity",
    ("storage.k8s.io", "storageclasses"): "StorageClass",
    ("storage.k8s.io", "volumeattachments"): "VolumeAttachment",
}  # fmt: skip


class KindIndex:
    """(group, resource) -> kind: the built-in table, then discovery (`discover`, which
    lists the API server's resources), asked at most once per unknown resource."""

    def __init__(self, discover: Callable[[], list[ApiResource]] | None = None) -> None:
        self._known: dict[tuple[str, str], str] = dict(BUILTIN_KINDS)
        self._asked: set[tuple[str, str]] = set()
        self._discover = discover
        self._lock = threading.Lock()

    def kind(self, group: str, resource: str) -> str:
        """The kind, or "" when neither the table nor the API server knows it."""
        key = (group, resource)
        with self._lock:
            if key in self._known or key in self._asked or self._discover is None:
                return self._known.get(key, "")
            self._asked.add(key)
            try:
                for item in self._discover():
                    self._known.setdefault((item.group, item.resource), item.kind)
            except DriftwardenError:
                pass  # unreachable now: unknown for this process, found by the inventory
            return self._known.get(key, "")

    def table(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        return {key: self.kind(*key) for key in keys}
