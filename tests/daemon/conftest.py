"""The daemon tests deploy local-demo stacks like the integration tests, and read what
reaches a real HTTP endpoint like the notification tests."""

from tests.integration.conftest import demo, fleet
from tests.notify.conftest import http_endpoint

__all__ = ["demo", "fleet", "http_endpoint"]
