"""Forwarding and signing tests: local-demo stacks scanned by the real engine (as the
integration tests deploy them), a real rsyslog (tests/rsyslog.py) and a real HTTP
receiver on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import demo, deployed_demo, fleet
from tests.notify.conftest import http_endpoint
from tests.rsyslog import Rsyslog, RsyslogUnavailableError

__all__ = ["demo", "deployed_demo", "fleet", "http_endpoint"]


def _running(root: Path, *, tls: bool) -> Iterator[Rsyslog]:
    server = Rsyslog(root, tls=tls)
    try:
        server.start()
    except RsyslogUnavailableError as exc:  # fail, never skip: CI must notice
        raise pytest.fail.Exception(str(exc), pytrace=False) from None
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    """rsyslog on plain TCP."""
    yield from _running(tmp_path / "rsyslog", tls=False)


@pytest.fixture
def rsyslog_tls(tmp_path: Path) -> Iterator[Rsyslog]:
    """rsyslog on TLS (its OpenSSL driver), with a CA of the test's own."""
    yield from _running(tmp_path / "rsyslog-tls", tls=True)
