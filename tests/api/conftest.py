"""The Python API's tests scan a copy of the session's deployed demo stack."""

from tests.integration.conftest import deployed_demo

__all__ = ["deployed_demo"]
