"""The Python API's tests scan a copy of the session's deployed demo stack; the outbox's
and the forwarders' tests send to a real HTTP endpoint on loopback."""

from tests.integration.conftest import deployed_demo, fleet
from tests.notify.conftest import http_endpoint

__all__ = ["deployed_demo", "fleet", "http_endpoint"]
