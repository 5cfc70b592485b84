"""Risk rules: how bad is a drifted property? Pure: no I/O.

A rule matches a resource type glob, a property path glob (`*` matches anything,
brackets are literal: `ingress[*].cidrBlocks[*]`), optionally the resource change
(`delete`, …) and a value test on the live/planned (`actual`) or state (`expected`)
value, and gives a severity and a title. A finding carries its highest severity.
Secret values are never tested: only rules without a value test can match them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from driftwarden.domain.model import ChangeKind, PropertyChange, ResourceChange, Severity
from driftwarden.drift.platform import is_whole_object, unmanaged_fields
from driftwarden.drift.propertypath import glob

_EMPTY: tuple[Any, ...] = (None, "", [], {})


@dataclass(frozen=True)
class Rule:
    title: str
    severity: Severity
    type: str = "*"
    path: str = "*"
    change: str = "*"  # the resource's change: update | delete | create | replace
    kind: str = "*"  # glob over the property's diff kind: "add*", "update", …
    equals: Any = None  # actual == equals (or an element of a list actual)
    contains: str | None = None  # the JSON text of actual contains this
    matches: str | None = None  # a regex found in actual (its JSON text if not a string)
    changed_from: Any = None  # expected == changed_from
    changed_to: Any = None  # actual == changed_to
    empty: bool | None = None  # True: actual is gone (null, "", [], {})
    resource_contains: str | None = None  # the JSON text of the live resource contains this

    @cached_property
    def _type(self) -> re.Pattern[str]:
        return glob(self.type)

    @cached_property
    def _path(self) -> re.Pattern[str]:
        return glob(self.path)

    @cached_property
    def _kind(self) -> re.Pattern[str]:
        return glob(self.kind)

    @property
    def tests_value(self) -> bool:
        return any(
            test is not None
            for test in (self.equals, self.contains, self.matches, self.changed_from,
                         self.changed_to, self.empty)
        )  # fmt: skip

    def match(self, change: ResourceChange, prop: PropertyChange) -> bool:
        if not (self._type.match(change.type) and self._path.match(prop.path)):
            return False
        if self.change not in ("*", change.change) or not self._kind.match(prop.kind):
            return False
        if self.resource_contains is not None and (
            change.live is None or self.resource_contains not in _text(change.live)
        ):
            return False
        if not self.tests_value:
            return True
        if prop.secret:
            return False
        return self._values(prop.expected, prop.actual)

    def _values(self, expected: Any, actual: Any) -> bool:
        if self.equals is not None and not (
            _same(actual, self.equals)
            or (isinstance(actual, list) and any(_same(item, self.equals) for item in actual))
        ):
            return False
        if self.contains is not None and self.contains not in _text(actual):
            return False
        if self.matches is not None and not re.search(self.matches, _text(actual)):
            return False
        if self.changed_from is not None and not _same(expected, self.changed_from):
            return False
        if self.changed_to is not None and not _same(actual, self.changed_to):
            return False
        return self.empty is None or (actual in _EMPTY) == self.empty


def _same(value: Any, wanted: Any) -> bool:
    """Equality that keeps booleans apart from numbers (`true` is not `1`)."""
    if isinstance(value, bool) or isinstance(wanted, bool):
        return value is wanted
    return bool(value == wanted)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Assessment:
    severity: Severity
    title: str


def assess(
    rules: Iterable[Rule], change: ResourceChange, prop: PropertyChange
) -> Assessment | None:
    """The highest-severity rule matching one property difference (or whole resource)."""
    best: Assessment | None = None
    for rule in rules:
        if rule.match(change, prop) and (best is None or rule.severity.rank > best.severity.rank):
            best = Assessment(rule.severity, rule.title)
    return best


def severity_rank(severity: str | None) -> int:
    """For sorting: higher is worse; unrated (None) is below `low`."""
    return Severity(severity).rank if severity else -1


def at_least(severity: str | None, minimum: Severity) -> bool:
    return severity is not None and Severity(severity).rank >= minimum.rank


# Kubernetes. Paths are the provider's (camelCase, as in the manifests). Most of these
# differences are invisible to the provider's own diff, which prunes live lists to the
# program's length: they are found by comparing outputs (driftwarden.drift.extract).
_RBAC_ROLES = "kubernetes:rbac.authorization.k8s.io/*:*Role"
_RBAC_BINDINGS = "kubernetes:rbac.authorization.k8s.io/*:*RoleBinding"
_WORKLOADS = "kubernetes:*"  # Pods and every kind with a pod template
_NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
_SERVICE = "kubernetes:core/v1:Service"
_WIDENING = ("add*", "update*")  # property diff kinds that grant something


def _value_rules(
    title: str, severity: Severity, type: str, path: str, values: Sequence[str]
) -> list[Rule]:
    """Rules for values that show up as a leaf (`"secrets"`) or inside a larger added
    object (`{"resources": ["secrets"], …}`), for each widening diff kind."""
    rules = []
    for kind in _WIDENING:
        for value in values:
            rules.append(Rule(title, severity, type, path, kind=kind, equals=value))
            rules.append(Rule(title, severity, type, path, kind=kind,
                              contains=json.dumps(value)))  # fmt: skip
    return rules


_RBAC_DANGEROUS_VERBS = ("escalate", "bind", "impersonate")
_PUBLIC_GROUPS = ("system:anonymous", "system:unauthenticated", "system:masters")

KUBERNETES_RULES: tuple[Rule, ...] = (
    # RBAC: permissions added or widened to a role; any wildcard, secrets or the verbs that
    # grant more permissions are critical.
    Rule("RBAC permissions added", Severity.HIGH, _RBAC_ROLES, "rules*", kind="add*"),
    Rule("RBAC rule changed", Severity.HIGH, _RBAC_ROLES, "rules*", kind="update*"),
    Rule("RBAC aggregation changed", Severity.HIGH, _RBAC_ROLES, "aggregationRule*"),
    *_value_rules("RBAC wildcard granted", Severity.CRITICAL, _RBAC_ROLES, "rules*", ("*",)),
    *_value_rules(
        "RBAC access to secrets granted", Severity.CRITICAL, _RBAC_ROLES, "rules*", ("secrets",)
    ),
    *_value_rules(
        "RBAC escalation verbs granted",
        Severity.CRITICAL,
        _RBAC_ROLES,
        "rules*",
        _RBAC_DANGEROUS_VERBS,
    ),
    # Bindings: a subject added or changed; to cluster-admin, or a public group, critical.
    Rule("RBAC subject added", Severity.HIGH, _RBAC_BINDINGS, "subjects*", kind="add*"),
    Rule("RBAC subject changed", Severity.HIGH, _RBAC_BINDINGS, "subjects*", kind="update*"),
    Rule("RBAC binding's role changed", Severity.HIGH, _RBAC_BINDINGS, "roleRef*"),
    Rule(
        "cluster-admin granted",
        Severity.CRITICAL,
        _RBAC_BINDINGS,
        "roleRef*",
        equals="cluster-admin",
    ),
    Rule(
        "cluster-admin granted",
        Severity.CRITICAL,
        _RBAC_BINDINGS,
        "subjects*",
        kind="add*",
        resource_contains='"name": "cluster-admin"',
    ),
    Rule(
        "cluster-admin granted",
        Severity.CRITICAL,
        _RBAC_BINDINGS,
        "subjects*",
        kind="update*",
        resource_contains='"name": "cluster-admin"',
    ),
    *_value_rules(
        "RBAC granted to everyone", Severity.CRITICAL, _RBAC_BINDINGS, "subjects*", _PUBLIC_GROUPS
    ),
    # Containers: privileged, privilege escalation, the host's namespaces and files, and
    # added capabilities.
    Rule(
        "container made privileged",
        Severity.CRITICAL,
        _WORKLOADS,
        "*securityContext.privileged",
        equals=True,
    ),
    Rule(
        "container made privileged",
        Severity.CRITICAL,
        _WORKLOADS,
        "*containers*",
        kind="add*",
        contains='"privileged": true',
    ),
    Rule(
        "privilege escalation allowed",
        Severity.HIGH,
        _WORKLOADS,
        "*securityContext.allowPrivilegeEscalation",
        equals=True,
    ),
    Rule(
        "privilege escalation allowed",
        Severity.HIGH,
        _WORKLOADS,
        "*containers*",
        kind="add*",
        contains='"allowPrivilegeEscalation": true',
    ),
    Rule("host PID namespace shared", Severity.CRITICAL, _WORKLOADS, "*hostPID", equals=True),
    Rule("host network shared", Severity.HIGH, _WORKLOADS, "*hostNetwork", equals=True),
    Rule("host IPC namespace shared", Severity.HIGH, _WORKLOADS, "*hostIPC", equals=True),
    Rule(
        "host path mounted",
        Severity.HIGH,
        _WORKLOADS,
        "*volumes*",
        kind="add*",
        contains='"hostPath"',
    ),
    Rule("host path mounted", Severity.HIGH, _WORKLOADS, "*volumes[*].hostPath*"),
    Rule("capabilities added", Severity.HIGH, _WORKLOADS, "*capabilities.add*", kind="add*"),
    Rule("capabilities added", Severity.HIGH, _WORKLOADS, "*capabilities.add*", kind="update*"),
    Rule(
        "capabilities added",
        Severity.HIGH,
        _WORKLOADS,
        "*securityContext*",
        kind="add*",
        contains='"add": [',
    ),
    *_value_rules(
        "SYS_ADMIN or ALL capabilities added",
        Severity.CRITICAL,
        _WORKLOADS,
        "*securityContext*",
        ("SYS_ADMIN", "ALL"),
    ),
    # Network policies: removed, or a rule added (an empty rule admits everything).
    Rule("NetworkPolicy removed", Severity.HIGH, _NETPOL, "", change=ChangeKind.DELETE),
    Rule("NetworkPolicy rule added", Severity.HIGH, _NETPOL, "spec.ingress*", kind="add*"),
    Rule("NetworkPolicy rule added", Severity.HIGH, _NETPOL, "spec.egress*", kind="add*"),
    Rule("NetworkPolicy rule widened", Severity.HIGH, _NETPOL, "spec.ingress*", kind="update*"),
    Rule("NetworkPolicy rule widened", Severity.HIGH, _NETPOL, "spec.egress*", kind="update*"),
    Rule("NetworkPolicy no longer enforced", Severity.HIGH, _NETPOL, "spec.policyTypes*"),
    Rule("NetworkPolicy selector changed", Severity.MEDIUM, _NETPOL, "spec.podSelector*"),
    # Services: exposed outside the cluster, or a port opened.
    Rule(
        "Service exposed outside the cluster",
        Severity.MEDIUM,
        _SERVICE,
        "spec.type",
        matches="^(NodePort|LoadBalancer)$",
    ),
    Rule("Service port added", Severity.MEDIUM, _SERVICE, "spec.ports*", kind="add*"),
    Rule("Service external IP added", Severity.MEDIUM, _SERVICE, "spec.externalIPs*", kind="add*"),
    # Secrets: the data changed (reported by path only: values are never shown).
    Rule("Secret data changed", Severity.HIGH, "kubernetes:core/v1:Secret", "data*"),
    Rule("Secret data changed", Severity.HIGH, "kubernetes:core/v1:Secret", "stringData*"),
)


_SG = "aws:ec2/securityGroup:SecurityGroup"
_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
_SSE = "aws:s3/bucketServerSideEncryptionConfiguration*"
_PUBLIC_INGRESS = "security group ingress opened to the whole internet"

BUILTIN_RULES: Sequence[Rule] = (
    # Security groups: an ingress rule (or one of its CIDRs) open to 0.0.0.0/0 or ::/0.
    Rule(_PUBLIC_INGRESS, Severity.CRITICAL, _SG, "ingress*", contains='"0.0.0.0/0"'),
    Rule(_PUBLIC_INGRESS, Severity.CRITICAL, _SG, "ingress*", contains='"::/0"'),
    Rule(_PUBLIC_INGRESS, Severity.CRITICAL, _SG, "ingress*", equals="0.0.0.0/0"),
    Rule(_PUBLIC_INGRESS, Severity.CRITICAL, _SG, "ingress*", equals="::/0"),
    Rule(
        _PUBLIC_INGRESS,
        Severity.CRITICAL,
        "aws:vpc/securityGroupIngressRule:*",
        "cidrIpv4",
        equals="0.0.0.0/0",
    ),
    Rule(
        _PUBLIC_INGRESS,
        Severity.CRITICAL,
        "aws:vpc/securityGroupIngressRule:*",
        "cidrIpv6",
        equals="::/0",
    ),
    # S3: the public access block relaxed or removed.
    Rule("S3 public access block relaxed", Severity.HIGH, _PAB, "*Public*", changed_to=False),
    Rule("S3 public access block removed", Severity.HIGH, _PAB, "", change=ChangeKind.DELETE),
    # S3: encryption or versioning turned off.
    Rule("bucket encryption turned off", Severity.HIGH, _SSE, "", change=ChangeKind.DELETE),
    Rule("bucket encryption turned off", Severity.HIGH, _SSE, "rule*", empty=True),
    Rule(
        "bucket encryption turned off",
        Severity.HIGH,
        "aws:s3/bucket:Bucket*",
        "serverSideEncryptionConfiguration*",
        empty=True,
    ),
    Rule(
        "bucket versioning turned off",
        Severity.MEDIUM,
        "aws:s3/bucketVersioning*",
        "versioningConfiguration.status",
        matches="^(Suspended|Disabled)$",
    ),
    Rule(
        "bucket versioning turned off",
        Severity.MEDIUM,
        "aws:s3/bucket:Bucket*",
        "versioning*",
        changed_to=False,
    ),
    # IAM: a policy document or a role's trust policy changed.
    Rule("IAM policy document changed", Severity.HIGH, "aws:iam/rolePolicy:RolePolicy", "policy"),
    Rule("IAM policy document changed", Severity.HIGH, "aws:iam/policy:Policy", "policy"),
    Rule("IAM policy document changed", Severity.HIGH, "aws:iam/userPolicy:UserPolicy", "policy"),
    Rule("IAM role trust policy changed", Severity.HIGH, "aws:iam/role:Role", "assumeRolePolicy"),
    # The local demo: a file made world-writable (octal mode, others may write).
    Rule(
        "file made world-writable",
        Severity.HIGH,
        "pulumi-python:dynamic:Resource",
        "mode",
        matches=r"^0?[0-7]?[0-7][0-7][2367]$",
    ),
    *KUBERNETES_RULES,
)


def assess_change(rules: Sequence[Rule], change: ResourceChange) -> dict[str, Assessment]:
    """Each property of a changed resource ("" for the whole resource) that a rule rates.
    An object no stack manages is one finding: its fields' highest rating rates it."""
    if is_whole_object(change):
        top = highest(
            rating for prop in unmanaged_fields(change)
            if (rating := assess(rules, change, prop)) is not None
        )  # fmt: skip
        return {"": top} if top else {}
    found: dict[str, Assessment] = {}
    properties = change.properties or (PropertyChange("", "", None, None, False),)
    for prop in properties:
        rating = assess(rules, change, prop)
        if rating is not None:
            found[prop.path] = rating
    return found


def highest(ratings: Iterable[Assessment]) -> Assessment | None:
    return max(ratings, key=lambda rating: rating.severity.rank, default=None)
