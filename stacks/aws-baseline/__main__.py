"""aws-baseline: an S3 bucket, a security group and an IAM role, configured from the stack.

Config (all optional):
    aws-baseline:namePrefix    prefix of every resource name (default "driftwarden")
    aws-baseline:allowedCidrs  list of CIDR blocks allowed to reach HTTPS (default ["10.0.0.0/8"])
    aws-baseline:adminCidr     narrow CIDR block allowed to reach SSH (default: no SSH rule)
    aws-baseline:vpcId         VPC of the security group (default: the region's default VPC)
    aws-baseline:tags          map of extra tags, merged over the default ones
"""

from typing import Any

import pulumi
from baseline import build, outputs

DEFAULT_NAME_PREFIX = "driftwarden"
DEFAULT_ALLOWED_CIDRS = ["10.0.0.0/8"]


def _string_list(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise pulumi.RunError(f"aws-baseline:{key} must be a list of strings, got {value!r}")
    return value


def _string_map(value: Any, key: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise pulumi.RunError(f"aws-baseline:{key} must be a map of strings, got {value!r}")
    return value


config = pulumi.Config()
name_prefix = config.get("namePrefix") or DEFAULT_NAME_PREFIX
configured_cidrs = config.get_object("allowedCidrs")
allowed_cidrs = _string_list(
    DEFAULT_ALLOWED_CIDRS if configured_cidrs is None else configured_cidrs, "allowedCidrs"
)
tags = {
    "project": pulumi.get_project(),
    "stack": pulumi.get_stack(),
    "managed-by": "pulumi",
    **_string_map(config.get_object("tags") or {}, "tags"),
}

baseline = build(
    name_prefix,
    allowed_cidrs,
    tags,
    admin_cidr=config.get("adminCidr"),
    vpc_id=config.get("vpcId"),
)

for key, value in outputs(baseline).items():
    pulumi.export(key, value)
