"""A Kubernetes baseline: the objects whose drift matters most, in one namespace.

RBAC (a Role and RoleBinding, a ClusterRole and ClusterRoleBinding), a ServiceAccount, a
NetworkPolicy that admits only the app's own pods, a ClusterIP Service, a Deployment, a
ConfigMap and a Secret. Names are fixed (no auto-naming) so that people, and the tests,
can find each object with kubectl; cluster-scoped names carry the namespace so that
several stacks can share one cluster.

Config: `namespace` (default "baseline"), `image` (default "nginx:1.27"), `replicas`
(default 1), `logLevel` (default "info"), `apiToken` (secret, required), `skipAwait`
(default false: wait for the Deployment's pods and the Service's endpoints; set it on a
cluster without nodes, such as scripts/kube-cluster's, where pods never start). The
cluster is the provider's usual: `kubernetes:kubeconfig` or $KUBECONFIG.
"""

import pulumi
import pulumi_kubernetes as k8s

config = pulumi.Config()
namespace_name = config.get("namespace") or "baseline"
labels = {"app": "web", "app.kubernetes.io/managed-by": "pulumi"}
# Without nodes, pods never start: don't wait for them (or for the Service's endpoints).
no_wait = {"pulumi.com/skipAwait": "true"} if config.get_bool("skipAwait") else {}


def meta(name: str, **extra: object) -> k8s.meta.v1.ObjectMetaArgs:
    return k8s.meta.v1.ObjectMetaArgs(
        name=name, namespace=namespace.metadata.name, labels=labels, **extra
    )


namespace = k8s.core.v1.Namespace(
    "namespace", metadata=k8s.meta.v1.ObjectMetaArgs(name=namespace_name, labels=labels)
)

app_config = k8s.core.v1.ConfigMap(
    "app-config",
    metadata=meta("app-config"),
    data={"LOG_LEVEL": config.get("logLevel") or "info", "FEATURE_FLAGS": "search,export"},
)

# Pulumi keeps the token encrypted in state and blinds it in every event.
app_secret = k8s.core.v1.Secret(
    "app-secret",
    metadata=meta("app-secret"),
    type="Opaque",
    string_data={"API_TOKEN": config.require_secret("apiToken")},
)

service_account = k8s.core.v1.ServiceAccount("web", metadata=meta("web"))

# Least privilege: the app reads its own config, nothing else.
role = k8s.rbac.v1.Role(
    "config-reader",
    metadata=meta("config-reader"),
    rules=[
        k8s.rbac.v1.PolicyRuleArgs(
            api_groups=[""],
            resources=["configmaps"],
            verbs=["get", "list"],
            resource_names=["app-config"],
        )
    ],
)

role_binding = k8s.rbac.v1.RoleBinding(
    "config-reader",
    metadata=meta("config-reader"),
    role_ref=k8s.rbac.v1.RoleRefArgs(
        api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
    ),
    subjects=[
        k8s.rbac.v1.SubjectArgs(
            kind="ServiceAccount",
            name=service_account.metadata.name,
            namespace=namespace.metadata.name,
        )
    ],
)

cluster_role = k8s.rbac.v1.ClusterRole(
    "node-viewer",
    metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{namespace_name}-node-viewer", labels=labels),
    rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["nodes"], verbs=["get"])],
)

cluster_role_binding = k8s.rbac.v1.ClusterRoleBinding(
    "node-viewer",
    metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{namespace_name}-node-viewer", labels=labels),
    role_ref=k8s.rbac.v1.RoleRefArgs(
        api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=cluster_role.metadata.name
    ),
    subjects=[
        k8s.rbac.v1.SubjectArgs(
            kind="ServiceAccount",
            name=service_account.metadata.name,
            namespace=namespace.metadata.name,
        )
    ],
)

# Only the app's own pods may reach it, on its port; nothing else gets in.
network_policy = k8s.networking.v1.NetworkPolicy(
    "web-ingress",
    metadata=meta("web-ingress"),
    spec=k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app": "web"}),
        policy_types=["Ingress"],
        ingress=[
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app": "web"})
                    )
                ],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=8080, protocol="TCP")],
            )
        ],
    ),
)

service = k8s.core.v1.Service(
    "web",
    metadata=meta("web", annotations=no_wait),
    spec=k8s.core.v1.ServiceSpecArgs(
        type="ClusterIP",
        selector={"app": "web"},
        ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port=8080)],
    ),
)

deployment = k8s.apps.v1.Deployment(
    "web",
    metadata=meta("web", annotations=no_wait),
    spec=k8s.apps.v1.DeploymentSpecArgs(
        replicas=config.get_int("replicas") or 1,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app": "web"}),
        template=k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
            spec=k8s.core.v1.PodSpecArgs(
                service_account_name=service_account.metadata.name,
                containers=[
                    k8s.core.v1.ContainerArgs(
                        name="web",
                        image=config.get("image") or "nginx:1.27",
                        ports=[k8s.core.v1.ContainerPortArgs(container_port=8080)],
                        env_from=[
                            k8s.core.v1.EnvFromSourceArgs(
                                config_map_ref=k8s.core.v1.ConfigMapEnvSourceArgs(
                                    name=app_config.metadata.name
                                )
                            )
                        ],
                        security_context=k8s.core.v1.SecurityContextArgs(
                            allow_privilege_escalation=False, run_as_non_root=True
                        ),
                    )
                ],
            ),
        ),
    ),
)

pulumi.export("namespace", namespace.metadata.name)
pulumi.export("service_account", service_account.metadata.name)
