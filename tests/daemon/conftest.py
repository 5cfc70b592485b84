"""The daemon tests deploy local-demo stacks like the integration tests, and read what
reaches a real HTTP endpoint like the notification tests."""

from tests.integration.conftest import demo, deployed_demo, fleet
from tests.notify.conftest import http_endpoint

__all__ = ["demo", "deployed_demo", "fleet", "http_endpoint"]
