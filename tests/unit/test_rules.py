"""Risk rules on differences shaped exactly as the extraction produces them.

AWS cannot be reached here, so the steps are built in the engine's event shape with
pulumi-aws's own property names and value shapes (as stacks/aws-baseline declares them)
and run through the real extraction; the local-demo case uses a recorded event log."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from driftwarden.config import RuleConfig
from driftwarden.domain.model import ResourceChange, Severity
from driftwarden.drift import extract_changes
from driftwarden.drift.rules import BUILTIN_RULES, Assessment, assess_change, highest
from tests.conftest import load_events

SG = "aws:ec2/securityGroup:SecurityGroup"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

INGRESS = {
    "cidrBlocks": ["10.20.0.0/16"], "description": "https", "fromPort": 443,
    "ipv6CidrBlocks": [], "prefixListIds": [], "protocol": "tcp", "securityGroups": [],
    "self": False, "toPort": 443,
}  # fmt: skip
TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'  # noqa: E501


def step(type_: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> ResourceChange:
    """One refresh step as the engine reports it, through the real extraction."""
    urn = f"urn:pulumi:prod::aws-baseline::{type_}::baseline"
    op = "update" if old and new else ("delete" if old else "create")
    state = {"type": type_, "urn": urn, "custom": True, "id": "x"}
    event = {
        "resOutputsEvent": {
            "metadata": {
                "op": op, "urn": urn, "type": type_,
                "old": {**state, "inputs": old, "outputs": old} if old else None,
                "new": {**state, "inputs": new, "outputs": new} if new else None,
                "detailedDiff": None,
            }
        }
    }  # fmt: skip
    (change,) = extract_changes([event])
    return change


def rating(change: ResourceChange) -> Assessment | None:
    return highest(assess_change(BUILTIN_RULES, change).values())


def sg(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"name": "web", "ingress": list(rules), "tags": {"owner": "platform"}}


def with_cidr(cidrs: list[str], field: str = "cidrBlocks") -> dict[str, Any]:
    rule = copy.deepcopy(INGRESS)
    rule[field] = cidrs
    return rule


@pytest.mark.parametrize(
    ("change", "severity", "title"),
    [
        (step(SG, sg(INGRESS), sg(with_cidr(["0.0.0.0/0"]))), "critical",
         "security group ingress opened to the whole internet"),
        (step(SG, sg(INGRESS), sg(INGRESS, with_cidr(["::/0"], "ipv6CidrBlocks"))), "critical",
         "security group ingress opened to the whole internet"),
        (step(PAB, {"blockPublicAcls": True, "blockPublicPolicy": True},
              {"blockPublicAcls": True, "blockPublicPolicy": False}), "high",
         "S3 public access block relaxed"),
        (step(PAB, {"blockPublicAcls": True, "bucket": "b"}, None), "high",
         "S3 public access block removed"),
        (step(SSE, {"bucket": "b", "rules": [{"bucketKeyEnabled": True}]}, None), "high",
         "bucket encryption turned off"),
        (step(VERSIONING, {"versioningConfiguration": {"status": "Enabled"}},
              {"versioningConfiguration": {"status": "Suspended"}}), "medium",
         "bucket versioning turned off"),
        (step(ROLE_POLICY, {"policy": '{"Statement":[{"Action":["s3:GetObject"]}]}'},
              {"policy": '{"Statement":[{"Action":["s3:*"]}]}'}), "high",
         "IAM policy document changed"),
        (step(ROLE, {"assumeRolePolicy": TRUST},
              {"assumeRolePolicy": TRUST.replace("ec2", "lambda")}), "high",
         "IAM role trust policy changed"),
    ],
    ids=["ingress-v4", "ingress-v6-added", "pab-relaxed", "pab-removed", "sse-removed",
         "versioning-suspended", "role-policy", "trust-policy"],
)  # fmt: skip
def test_builtin_rules_catch_the_classic_dangerous_drifts(
    change: ResourceChange, severity: str, title: str
) -> None:
    found = rating(change)
    assert found is not None, change
    assert (found.severity.value, found.title) == (severity, title)


@pytest.mark.parametrize(
    "change",
    [
        step(SG, sg(with_cidr(["0.0.0.0/0"])), sg(INGRESS)),  # ingress narrowed
        step(SG, sg(INGRESS), sg(with_cidr(["10.0.0.0/8"]))),  # still private
        step(PAB, {"blockPublicAcls": False}, {"blockPublicAcls": True}),  # tightened
        step(SSE, None, {"bucket": "b", "rules": [{"bucketKeyEnabled": True}]}),  # turned on
        step(VERSIONING, {"versioningConfiguration": {"status": "Suspended"}},
             {"versioningConfiguration": {"status": "Enabled"}}),  # turned on
        step(ROLE, {"assumeRolePolicy": TRUST, "tags": {"a": "1"}},
             {"assumeRolePolicy": TRUST, "tags": {"a": "2"}}),  # only a tag
    ],
    ids=["ingress-narrowed", "ingress-private", "pab-tightened", "sse-on", "versioning-on",
         "role-tag"],
)  # fmt: skip
def test_builtin_rules_stay_quiet_on_safe_changes(change: ResourceChange) -> None:
    assert rating(change) is None


def test_world_writable_demo_file_is_high_on_a_recorded_refresh() -> None:
    changes = {c.name: c for c in extract_changes(load_events("refresh-drift"))}
    settings = rating(changes["settings"])  # 0640 -> 0666 out of band
    assert settings == Assessment(Severity.HIGH, "file made world-writable")
    assert rating(changes["motd"]) is None  # content drift: no rule


def test_value_tests_never_look_at_secrets() -> None:
    changes = {c.name: c for c in extract_changes(load_events("refresh-drift"))}
    anything = RuleConfig(title="token", severity="critical", path="content", matches=".*").rule()
    assert assess_change([anything], changes["api-token"]) == {}  # redacted: not tested
    by_path = RuleConfig(title="token changed", severity="low", path="content").rule()
    assert assess_change([by_path], changes["api-token"])["content"].title == "token changed"


def test_the_highest_matching_rule_wins() -> None:
    change = step(SG, sg(INGRESS), sg(with_cidr(["0.0.0.0/0"])))
    mild = RuleConfig(title="any ingress change", severity="low", type=SG, path="ingress*").rule()
    assert highest(assess_change([mild, *BUILTIN_RULES], change).values()) == Assessment(
        Severity.CRITICAL, "security group ingress opened to the whole internet"
    )
    assert highest(assess_change([mild], change).values()) == Assessment(
        Severity.LOW, "any ingress change"
    )
