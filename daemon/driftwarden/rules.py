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
from enum import StrEnum
from functools import cached_property
from typing import Any

from driftwarden.model import PropertyChange, ResourceChange


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(pattern).replace(r"\*", ".*") + "$")


_EMPTY: tuple[Any, ...] = (None, "", [], {})


@dataclass(frozen=True)
class Rule:
    title: str
    severity: Severity
    type: str = "*"
    path: str = "*"
    change: str = "*"
    equals: Any = None  # actual == equals (or an element of a list actual)
    contains: str | None = None  # the JSON text of actual contains this
    matches: str | None = None  # a regex found in actual (its JSON text if not a string)
    changed_from: Any = None  # expected == changed_from
    changed_to: Any = None  # actual == changed_to
    empty: bool | None = None  # True: actual is gone (null, "", [], {})

    @cached_property
    def _type(self) -> re.Pattern[str]:
        return _glob(self.type)

    @cached_property
    def _path(self) -> re.Pattern[str]:
        return _glob(self.path)

    @property
    def tests_value(self) -> bool:
        return any(
            test is not None
            for test in (self.equals, self.contains, self.matches, self.changed_from,
                         self.changed_to, self.empty)
        )  # fmt: skip

    def match(
        self, *, type: str, path: str, change: str, expected: Any, actual: Any, secret: bool
    ) -> bool:
        if not (self._type.match(type) and self._path.match(path)):
            return False
        if self.change not in ("*", change):
            return False
        if not self.tests_value:
            return True
        if secret:
            return False
        return self._values(expected, actual)

    def _values(self, expected: Any, actual: Any) -> bool:
        if self.equals is not None and not (
            actual == self.equals or (isinstance(actual, list) and self.equals in actual)
        ):
            return False
        if self.contains is not None and self.contains not in _text(actual):
            return False
        if self.matches is not None and not re.search(self.matches, _text(actual)):
            return False
        if self.changed_from is not None and expected != self.changed_from:
            return False
        if self.changed_to is not None and actual != self.changed_to:
            return False
        return self.empty is None or (actual in _EMPTY) == self.empty


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Assessment:
    severity: Severity
    title: str


def assess(
    rules: Iterable[Rule],
    *,
    type: str,
    path: str,
    change: str,
    expected: Any,
    actual: Any,
    secret: bool,
) -> Assessment | None:
    """The highest-severity rule matching one property difference (or whole resource)."""
    best: Assessment | None = None
    for rule in rules:
        matched = rule.match(
            type=type, path=path, change=change, expected=expected, actual=actual, secret=secret
        )
        if matched and (best is None or rule.severity.rank > best.severity.rank):
            best = Assessment(rule.severity, rule.title)
    return best


def severity_rank(severity: str | None) -> int:
    """For sorting: higher is worse; unrated (None) is below `low`."""
    return Severity(severity).rank if severity else -1


def at_least(severity: str | None, minimum: str) -> bool:
    return severity is not None and Severity(severity).rank >= Severity(minimum).rank


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
    Rule("S3 public access block removed", Severity.HIGH, _PAB, "", change="delete"),
    # S3: encryption or versioning turned off.
    Rule("bucket encryption turned off", Severity.HIGH, _SSE, "", change="delete"),
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
)


def assess_change(rules: Sequence[Rule], change: ResourceChange) -> dict[str, Assessment]:
    """Each property of a changed resource ("" for the whole resource) that a rule rates."""
    found: dict[str, Assessment] = {}
    properties = change.properties or (PropertyChange("", "", None, None, False),)
    for prop in properties:
        rating = assess(
            rules, type=change.type, path=prop.path, change=change.change,
            expected=prop.expected, actual=prop.actual, secret=prop.secret,
        )  # fmt: skip
        if rating is not None:
            found[prop.path] = rating
    return found


def highest(ratings: Iterable[Assessment]) -> Assessment | None:
    return max(ratings, key=lambda rating: rating.severity.rank, default=None)
