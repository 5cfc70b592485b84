"""stacks/aws-baseline under Pulumi's unit-test mocks: no engine, no AWS, no network.

The mocks echo each resource's inputs back as its outputs and add what AWS would
compute (ids and ARNs), so these tests check what the program asks AWS for: the
settings driftwarden later compares against the live account.
"""

from __future__ import annotations

import ipaddress
import json
import runpy
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest

STACK_DIR = Path(__file__).resolve().parent.parent / "stacks" / "aws-baseline"
sys.path.insert(0, str(STACK_DIR))

import baseline  # noqa: E402

ACCOUNT_ID = "123456789012"
PREFIX = "dw-test"
ALLOWED = ["10.20.0.0/16", "192.0.2.0/24", "2001:db8::/48"]
ADMIN = "198.51.100.7/32"
TAGS = {"owner": "platform", "cost-center": "cc-42"}
WORLD = {"0.0.0.0/0", "::/0"}


class Mocks(pulumi.runtime.Mocks):
    """Inputs come back as outputs, plus the ids and ARNs AWS would assign."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "aws:s3/bucket:Bucket":
            # The engine's auto-naming does not run under mocks: name it like Pulumi would.
            name = outputs.setdefault("bucket", f"{args.name}-a1b2c3d")
            outputs["arn"] = f"arn:aws:s3:::{name}"
            return name, outputs
        if args.typ == "aws:ec2/securityGroup:SecurityGroup":
            group_id = "sg-0123456789abcdef0"
            arn = f"arn:aws:ec2:eu-west-1:{ACCOUNT_ID}:security-group/{group_id}"
            outputs["arn"] = arn
            return group_id, outputs
        if args.typ == "aws:iam/role:Role":
            name = outputs.setdefault("name", f"{args.name}-e5f6a7b")
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"
            return name, outputs
        return f"{args.name}-id", outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


@pytest.fixture(scope="module", autouse=True)
def _pulumi_mocks() -> Iterator[None]:
    pulumi.runtime.set_mocks(Mocks(), project="aws-baseline", stack="test", preview=False)
    yield
    pulumi.runtime.set_all_config({})
    pulumi.runtime.reset_options()


@pytest.fixture
def stack() -> baseline.Baseline:
    return baseline.build(PREFIX, ALLOWED, TAGS, admin_cidr=ADMIN)


def _resolve(*outputs: pulumi.Output[Any]) -> pulumi.Output[list[Any]]:
    """Like `Output.all`, but keeps typed values: `Output.all` flattens the provider's
    output types (e.g. `SecurityGroupIngress`) into plain dicts."""

    def appending(output: pulumi.Output[Any]) -> Callable[[list[Any]], pulumi.Output[list[Any]]]:
        return lambda values: output.apply(lambda value: [*values, value])

    resolved: pulumi.Output[list[Any]] = pulumi.Output.from_input([])
    for output in outputs:
        resolved = resolved.apply(appending(output))
    return resolved


def _rules(group: Any) -> list[tuple[str, int, int, list[str], list[str]]]:
    """Security group rules as (protocol, from, to, IPv4 CIDRs, IPv6 CIDRs), comparable.

    The baseline only uses CIDR sources, so any other source is a failure in itself.
    """
    for rule in group:
        assert not rule.self, rule
        assert not rule.security_groups, rule
        assert not rule.prefix_list_ids, rule
    return [
        (
            rule.protocol,
            rule.from_port,
            rule.to_port,
            list(rule.cidr_blocks or []),
            list(rule.ipv6_cidr_blocks or []),
        )
        for rule in group
    ]


def _world_open(rules: list[tuple[str, int, int, list[str], list[str]]]) -> list[str]:
    return [cidr for *_, v4, v6 in rules for cidr in v4 + v6 if cidr in WORLD]


# --- the bucket ---------------------------------------------------------------------------


@pulumi.runtime.test
def test_bucket_versioning_is_enabled_on_the_bucket(stack: baseline.Baseline) -> Any:
    def check(args: list[Any]) -> None:
        config, versioned_bucket, bucket_id = args
        assert config.status == "Enabled"
        assert versioned_bucket == bucket_id

    return _resolve(
        stack.versioning.versioning_configuration, stack.versioning.bucket, stack.bucket.id
    ).apply(check)


@pulumi.runtime.test
def test_bucket_default_encryption_is_kms_with_bucket_key(stack: baseline.Baseline) -> Any:
    def check(args: list[Any]) -> None:
        rules, encrypted_bucket, bucket_id = args
        assert len(rules) == 1
        (rule,) = rules
        assert rule.apply_server_side_encryption_by_default.sse_algorithm == "aws:kms"
        assert rule.bucket_key_enabled is True
        assert encrypted_bucket == bucket_id

    return _resolve(stack.encryption.rules, stack.encryption.bucket, stack.bucket.id).apply(check)


@pulumi.runtime.test
def test_every_public_access_block_flag_is_true(stack: baseline.Baseline) -> Any:
    block = stack.public_access_block

    def check(args: list[Any]) -> None:
        *flags, blocked_bucket, bucket_id = args
        assert flags == [True, True, True, True]
        assert blocked_bucket == bucket_id

    return _resolve(
        block.block_public_acls,
        block.block_public_policy,
        block.ignore_public_acls,
        block.restrict_public_buckets,
        block.bucket,
        stack.bucket.id,
    ).apply(check)


# --- the security group -------------------------------------------------------------------


@pulumi.runtime.test
def test_ingress_is_exactly_https_from_allowed_and_ssh_from_admin(
    stack: baseline.Baseline,
) -> Any:
    def check(ingress: Any) -> None:
        assert _rules(ingress) == [
            ("tcp", 443, 443, ["10.20.0.0/16", "192.0.2.0/24"], ["2001:db8::/48"]),
            ("tcp", 22, 22, [ADMIN], []),
        ]

    return stack.security_group.ingress.apply(check)


@pulumi.runtime.test
def test_egress_is_https_only(stack: baseline.Baseline) -> Any:
    def check(egress: Any) -> None:
        assert _rules(egress) == [("tcp", 443, 443, ["0.0.0.0/0"], ["::/0"])]

    return stack.security_group.egress.apply(check)


@pulumi.runtime.test
def test_without_admin_cidr_there_is_no_ssh_rule() -> Any:
    built = baseline.build(PREFIX, ["10.0.0.0/8"], TAGS)

    def check(ingress: Any) -> None:
        rules = _rules(ingress)
        assert [(r[1], r[2]) for r in rules] == [(443, 443)]
        assert _world_open(rules) == []

    return built.security_group.ingress.apply(check)


@pytest.mark.parametrize("world", sorted(WORLD))
def test_world_open_https_is_refused_unless_asked_for(world: str) -> None:
    with pytest.raises(ValueError, match="whole internet"):
        baseline.build(PREFIX, ["10.0.0.0/8", world], TAGS)


@pulumi.runtime.test
def test_world_open_https_when_explicitly_allowed() -> Any:
    built = baseline.build(PREFIX, ["0.0.0.0/0"], TAGS, allow_public_ingress=True)

    def check(ingress: Any) -> None:
        assert _world_open(_rules(ingress)) == ["0.0.0.0/0"]

    return built.security_group.ingress.apply(check)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"admin_cidr": "10.0.0.0/16"}, "too wide for SSH"),
        ({"admin_cidr": "0.0.0.0/0"}, "too wide for SSH"),
        ({"admin_cidr": "2001:db8::/32"}, "too wide for SSH"),
        ({"admin_cidr": "10.0.0.1/24"}, "not a valid CIDR"),
        ({"name_prefix": "Bad_Prefix"}, "name prefix"),
        ({"allowed_cidrs": []}, "at least one CIDR"),
        ({"allowed_cidrs": ["10.0.0.0/33"]}, "not a valid CIDR"),
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"name_prefix": PREFIX, "allowed_cidrs": ["10.0.0.0/8"], "tags": TAGS}
    with pytest.raises(ValueError, match=message):
        baseline.build(**(args | kwargs))


# --- the role -----------------------------------------------------------------------------


@pulumi.runtime.test
def test_only_ec2_may_assume_the_role(stack: baseline.Baseline) -> Any:
    def check(document: str) -> None:
        (statement,) = json.loads(document)["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Service": "ec2.amazonaws.com"}
        assert statement["Action"] == "sts:AssumeRole"

    return stack.role.assume_role_policy.apply(check)


@pulumi.runtime.test
def test_role_policy_grants_read_on_this_bucket_only(stack: baseline.Baseline) -> Any:
    def check(args: list[Any]) -> None:
        document, policy_role, role_id, bucket_name = args
        bucket_arn = f"arn:aws:s3:::{bucket_name}"
        assert bucket_name == f"{PREFIX}-data-a1b2c3d"  # the mock's name, through the ARN
        assert policy_role == role_id

        grants: dict[str, set[str]] = {}
        for statement in json.loads(document)["Statement"]:
            assert statement["Effect"] == "Allow"
            for action in statement["Action"]:
                grants.setdefault(action, set()).add(statement["Resource"])

        assert grants["s3:GetObject"] == {f"{bucket_arn}/*"}
        assert grants["s3:ListBucket"] == {bucket_arn}
        # Read-only: nothing that writes, deletes or changes the bucket's settings.
        assert all(action.startswith(("s3:Get", "s3:List")) for action in grants)
        assert set().union(*grants.values()) <= {bucket_arn, f"{bucket_arn}/*"}

    return _resolve(
        stack.role_policy.policy, stack.role_policy.role, stack.role.id, stack.bucket.bucket
    ).apply(check)


# --- tags and outputs ---------------------------------------------------------------------


@pulumi.runtime.test
def test_tags_reach_the_bucket_security_group_and_role(stack: baseline.Baseline) -> Any:
    def check(tag_maps: list[Any]) -> None:
        assert tag_maps == [TAGS, TAGS, TAGS]

    return _resolve(stack.bucket.tags, stack.security_group.tags, stack.role.tags).apply(check)


@pulumi.runtime.test
def test_outputs_name_the_bucket_group_and_role(stack: baseline.Baseline) -> Any:
    def check(values: dict[str, Any]) -> None:
        assert values == {
            "bucketName": f"{PREFIX}-data-a1b2c3d",
            "securityGroupId": "sg-0123456789abcdef0",
            "roleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/{PREFIX}-reader-e5f6a7b",
        }

    return pulumi.Output.all(**baseline.outputs(stack)).apply(check)


# --- the program, as `pulumi up` runs it ----------------------------------------------------


@pytest.fixture
def stack_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The stack's config as the engine hands it over; empty unless a test fills it."""
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    config: dict[str, str] = {}
    yield config
    pulumi.runtime.set_all_config({})


def _run_program(config: dict[str, str]) -> baseline.Baseline:
    pulumi.runtime.set_all_config(config)
    program: baseline.Baseline = runpy.run_path(str(STACK_DIR / "__main__.py"))["baseline"]
    return program


@pulumi.runtime.test
def test_program_defaults_are_private(stack_config: dict[str, str]) -> Any:
    program = _run_program(stack_config)

    def check(args: list[Any]) -> None:
        ingress, tags, bucket_name = args
        rules = _rules(ingress)
        assert rules == [("tcp", 443, 443, ["10.0.0.0/8"], [])]
        assert _world_open(rules) == []
        for *_, v4, _v6 in rules:
            assert all(ipaddress.ip_network(cidr).is_private for cidr in v4)
        assert tags == {"project": "aws-baseline", "stack": "test", "managed-by": "pulumi"}
        assert bucket_name.startswith("driftwarden-data-")

    return _resolve(
        program.security_group.ingress, program.security_group.tags, program.bucket.bucket
    ).apply(check)


@pulumi.runtime.test
def test_program_reads_its_stack_config(stack_config: dict[str, str]) -> Any:
    stack_config |= {
        "aws-baseline:namePrefix": "acme-prod",
        "aws-baseline:allowedCidrs": json.dumps(["172.16.0.0/12"]),
        "aws-baseline:adminCidr": ADMIN,
        "aws-baseline:tags": json.dumps({"owner": "platform", "managed-by": "team-infra"}),
    }
    program = _run_program(stack_config)

    def check(args: list[Any]) -> None:
        ingress, tags, bucket_name = args
        assert _rules(ingress) == [
            ("tcp", 443, 443, ["172.16.0.0/12"], []),
            ("tcp", 22, 22, [ADMIN], []),
        ]
        assert tags == {
            "project": "aws-baseline",
            "stack": "test",
            "managed-by": "team-infra",
            "owner": "platform",
        }
        assert bucket_name.startswith("acme-prod-data-")

    return _resolve(
        program.security_group.ingress, program.security_group.tags, program.bucket.bucket
    ).apply(check)
