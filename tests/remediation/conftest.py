"""Remediation tests deploy local-demo stacks and read a real webhook endpoint."""

from tests.integration.conftest import demo, fleet
from tests.notify.conftest import http_endpoint

__all__ = ["demo", "fleet", "http_endpoint"]
