"""Noise: differences that are not drift. Pure: no I/O.

A live object carries fields its server manages (versions, timestamps, status, the
bookkeeping of who wrote which field). They change all the time and say nothing about
drift, so built-in per-provider profiles and the user's `[[ignore]]` rules remove them
before findings, notifications and exit codes. Paths are globs over Pulumi property paths
(`*` matches anything, brackets are literal) and cover everything under what they match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from re import Pattern

from driftwarden.domain.model import ChangeKind, ResourceChange
from driftwarden.drift.propertypath import glob, subtree_glob


@dataclass(frozen=True)
class Ignore:
    """Differences at `path` (and below) of resources of `type` are not drift."""

    path: str
    type: str = "*"
    reason: str = ""

    @cached_property
    def _type(self) -> Pattern[str]:
        return glob(self.type)

    @cached_property
    def _path(self) -> Pattern[str]:
        return subtree_glob(self.path)

    def applies_to(self, type: str) -> bool:
        return bool(self._type.match(type))

    def matches(self, type: str, path: str) -> bool:
        return self.applies_to(type) and bool(self._path.match(path))


def _kubernetes(path: str, reason: str) -> Ignore:
    return Ignore(path=path, type="kubernetes:*", reason=reason)


# What the API server and its controllers write on every object, found on a real
# kube-apiserver 1.33 with its garbage-collector, namespace, serviceaccount, deployment
# and replicaset controllers running (tests/kubernetes).
KUBERNETES_NOISE: tuple[Ignore, ...] = (
    _kubernetes("metadata.managedFields", "server-side apply bookkeeping of field owners"),
    _kubernetes("metadata.resourceVersion", "changes on every write"),
    _kubernetes("metadata.generation", "the server counts spec changes"),
    _kubernetes("metadata.uid", "assigned by the server"),
    _kubernetes("metadata.creationTimestamp", "set by the server"),
    _kubernetes("metadata.selfLink", "set by older servers"),
    _kubernetes("status", "observed state, written by controllers"),
    _kubernetes(
        'metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]',
        "kubectl's copy of what it applied (the change itself shows on its own path)",
    ),
    _kubernetes(
        'metadata.annotations["deployment.kubernetes.io/revision"]',
        "the deployment controller's rollout counter",
    ),
)

BUILTIN_NOISE: Mapping[str, tuple[Ignore, ...]] = {"kubernetes": KUBERNETES_NOISE}


def builtin_noise() -> list[Ignore]:
    return [rule for profile in BUILTIN_NOISE.values() for rule in profile]


def without_noise(
    changes: Iterable[ResourceChange], ignores: Sequence[Ignore]
) -> list[ResourceChange]:
    """`changes` less the ignored differences. An update left with no property is no
    change at all; a rule whose path matches "" (e.g. `*`) ignores whole resources."""
    kept = []
    for change in changes:
        rules = [rule for rule in ignores if rule.applies_to(change.type)]
        if not rules:
            kept.append(change)
            continue
        if any(rule.matches(change.type, "") for rule in rules):
            continue
        properties = tuple(
            prop for prop in change.properties
            if not any(rule.matches(change.type, prop.path) for rule in rules)
        )  # fmt: skip
        if properties or change.change != ChangeKind.UPDATE:
            kept.append(replace(change, properties=properties))
    return kept
