"""Remediation tests deploy local-demo stacks and read a real webhook endpoint."""

from tests.integration.conftest import demo, deployed_demo, fleet
from tests.notify.conftest import http_endpoint

__all__ = ["demo", "deployed_demo", "fleet", "http_endpoint"]
