"""The daemon tests deploy local-demo stacks like the integration tests."""

from tests.integration.conftest import demo, fleet

__all__ = ["demo", "fleet"]
