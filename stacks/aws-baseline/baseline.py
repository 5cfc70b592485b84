"""The aws-baseline resources: the handful of settings that drift in real accounts.

Each setting below is one someone changes by hand sooner or later: versioning suspended
to save money, encryption switched, a public access flag turned off "for a minute", a
security group rule opened to the world, an extra action slipped into a role's policy.
`build()` declares them; driftwarden's refresh then reports every out-of-band edit.

The security group keeps its rules inline (`ingress`/`egress` on `ec2.SecurityGroup`),
which makes the rule set authoritative: a rule added in the console shows up as drift
instead of going unnoticed beside separately managed rule resources.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

HTTPS_PORT = 443
SSH_PORT = 22
# The widest IPv4 / IPv6 prefix still accepted as an SSH admin range.
ADMIN_MIN_PREFIX = {4: 24, 6: 56}
# Bucket names allow lowercase letters, digits and hyphens; keep the prefix well short of
# the 63-character limit so Pulumi's random suffix still fits.
NAME_PREFIX_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
TRUSTED_SERVICE = "ec2.amazonaws.com"
SSE_ALGORITHM = "aws:kms"


@dataclass(frozen=True)
class Baseline:
    """The resources `build()` declared, for exports and for tests to inspect."""

    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning
    encryption: aws.s3.BucketServerSideEncryptionConfiguration
    public_access_block: aws.s3.BucketPublicAccessBlock
    security_group: aws.ec2.SecurityGroup
    role: aws.iam.Role
    role_policy: aws.iam.RolePolicy


def _parse_cidr(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise ValueError(f"not a valid CIDR block: {cidr!r} ({exc})") from exc


def _split_cidrs(cidrs: Sequence[str], *, allow_public: bool) -> tuple[list[str], list[str]]:
    """Validate `cidrs` and split them into (IPv4, IPv6) lists, keeping their order."""
    ipv4: list[str] = []
    ipv6: list[str] = []
    for cidr in cidrs:
        network = _parse_cidr(cidr)
        if network.prefixlen == 0 and not allow_public:
            raise ValueError(
                f"{cidr} opens the port to the whole internet; "
                "pass allow_public_ingress=True if that is really intended"
            )
        (ipv4 if network.version == 4 else ipv6).append(str(network))
    return ipv4, ipv6


def _ingress_rule(
    port: int, cidrs: Sequence[str], description: str, *, allow_public: bool
) -> aws.ec2.SecurityGroupIngressArgsDict:
    ipv4, ipv6 = _split_cidrs(cidrs, allow_public=allow_public)
    rule: aws.ec2.SecurityGroupIngressArgsDict = {
        "description": description,
        "protocol": "tcp",
        "from_port": port,
        "to_port": port,
    }
    if ipv4:
        rule["cidr_blocks"] = ipv4
    if ipv6:
        rule["ipv6_cidr_blocks"] = ipv6
    return rule


def assume_role_policy(service: str = TRUSTED_SERVICE) -> str:
    """The role's trust policy: only `service` may assume it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowServiceAssumeRole",
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def bucket_read_policy(bucket_arn: str) -> str:
    """Read-only access to one bucket: list it and get its objects (and their versions)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ListBucket",
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                    "Resource": bucket_arn,
                },
                {
                    "Sid": "ReadObjects",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                    "Resource": f"{bucket_arn}/*",
                },
            ],
        }
    )


def build(
    name_prefix: str,
    allowed_cidrs: Sequence[str],
    tags: Mapping[str, str],
    *,
    admin_cidr: str | None = None,
    vpc_id: str | None = None,
    allow_public_ingress: bool = False,
) -> Baseline:
    """Declare the baseline resources and return them.

    Args:
        name_prefix: Prefix of every logical name (lowercase letters, digits, hyphens);
            physical names get Pulumi's random suffix.
        allowed_cidrs: CIDR blocks (IPv4 or IPv6) allowed to reach HTTPS (443).
        tags: Tags applied to the bucket, the security group and the role.
        admin_cidr: A narrow block (at most /24 for IPv4, /56 for IPv6) allowed to reach
            SSH (22). Without it the group has no SSH rule at all.
        vpc_id: The VPC of the security group; the region's default VPC when omitted.
        allow_public_ingress: Accept 0.0.0.0/0 or ::/0 in `allowed_cidrs`. Off by
            default, so a world-open baseline has to be asked for explicitly.

    Raises:
        ValueError: on a malformed prefix or CIDR, an empty `allowed_cidrs`, a world-open
            CIDR without `allow_public_ingress`, or an admin range wider than allowed.
    """
    if not NAME_PREFIX_PATTERN.match(name_prefix):
        raise ValueError(
            f"name prefix {name_prefix!r} must be 1-32 lowercase letters, digits or hyphens"
        )
    if not allowed_cidrs:
        raise ValueError("allowed_cidrs must name at least one CIDR block")

    ingress = [
        _ingress_rule(
            HTTPS_PORT,
            allowed_cidrs,
            "HTTPS from allowed networks",
            allow_public=allow_public_ingress,
        )
    ]
    if admin_cidr is not None:
        admin = _parse_cidr(admin_cidr)
        if admin.prefixlen < ADMIN_MIN_PREFIX[admin.version]:
            raise ValueError(
                f"admin CIDR {admin_cidr} is too wide for SSH; "
                f"use /{ADMIN_MIN_PREFIX[admin.version]} or narrower"
            )
        ingress.append(_ingress_rule(SSH_PORT, [admin_cidr], "SSH from admins", allow_public=False))

    tag_map = dict(tags)

    bucket = aws.s3.Bucket(f"{name_prefix}-data", tags=tag_map)

    versioning = aws.s3.BucketVersioning(
        f"{name_prefix}-data-versioning",
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
    )
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name_prefix}-data-encryption",
        bucket=bucket.id,
        rules=[
            {
                # The account's AWS-managed key (aws/s3); the bucket key cuts KMS calls.
                "apply_server_side_encryption_by_default": {"sse_algorithm": SSE_ALGORITHM},
                "bucket_key_enabled": True,
            }
        ],
    )
    public_access_block = aws.s3.BucketPublicAccessBlock(
        f"{name_prefix}-data-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )

    security_group = aws.ec2.SecurityGroup(
        f"{name_prefix}-sg",
        description=f"{name_prefix}: HTTPS from allowed networks, SSH from admins",
        vpc_id=vpc_id,
        ingress=ingress,
        egress=[
            {
                "description": "HTTPS out (package mirrors, AWS APIs)",
                "protocol": "tcp",
                "from_port": HTTPS_PORT,
                "to_port": HTTPS_PORT,
                "cidr_blocks": ["0.0.0.0/0"],
                "ipv6_cidr_blocks": ["::/0"],
            }
        ],
        tags=tag_map,
    )

    role = aws.iam.Role(
        f"{name_prefix}-reader",
        description=f"Reads the {name_prefix} data bucket; assumed by EC2 instances",
        assume_role_policy=assume_role_policy(),
        tags=tag_map,
    )
    role_policy = aws.iam.RolePolicy(
        f"{name_prefix}-reader-bucket-read",
        role=role.id,
        policy=bucket.arn.apply(bucket_read_policy),
    )

    return Baseline(
        bucket=bucket,
        versioning=versioning,
        encryption=encryption,
        public_access_block=public_access_block,
        security_group=security_group,
        role=role,
        role_policy=role_policy,
    )


def outputs(baseline: Baseline) -> dict[str, pulumi.Output[str]]:
    """The stack outputs: what an operator needs to find the resources in the console."""
    return {
        "bucketName": baseline.bucket.bucket,
        "securityGroupId": baseline.security_group.id,
        "roleArn": baseline.role.arn,
    }
