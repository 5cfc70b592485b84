"""`up --plan` refusing a step: the message pulumi 3.259 printed on this machine (see
tests/remediation/test_update_plans.py), reduced to names, never values."""

from __future__ import annotations

from driftwarden.domain.model import ErrorKind
from driftwarden.engine.errors import classify_failure

OUTPUT = """\
Diagnostics:
  pulumi-python:dynamic:Resource (readme):
    error: resource urn:pulumi:dev::local-demo::pulumi-python:dynamic:Resource::readme \
violates plan: properties changed: =~content[{Managed by Pulumi (stacks/local-demo). \
connection refused, token=s3cr3t-value
    }]
"""


def test_a_plan_violation_names_the_resource_and_property_only() -> None:
    error = classify_failure(OUTPUT, [], stack="dev", backend_url="file:///tmp/backend")
    assert error.kind is ErrorKind.PLAN_CHANGED
    assert "readme: content changed" in error.message
    assert "s3cr3t-value" not in error.message
    assert "Managed by Pulumi" not in error.message
