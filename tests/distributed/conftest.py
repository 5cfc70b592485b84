"""Distributed-mode fixtures: a real PostgreSQL server (the shared store and queue), demo
stacks deployed with the real engine, and worker processes as separate hosts."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.distributed.cluster import Cluster
from tests.integration.conftest import Fleet, deployed_demo, fleet
from tests.notify.conftest import http_endpoint
from tests.pgserver import PostgresServer, create_database, drop_database
from tests.store.conftest import postgres_server

__all__ = ["deployed_demo", "fleet", "http_endpoint", "postgres_server"]


@pytest.fixture
def cluster(
    fleet: Fleet, postgres_server: PostgresServer, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.fail(
            "the distributed tests give each worker its own host name: they need "
            "root and unshare (util-linux)"
        )
    name = f"dist_{os.getpid()}_{request.node.name[:30]}".lower().replace("[", "_").replace("]", "")
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    create_database(postgres_server, name)
    cluster = Cluster(
        fleet, postgres_server, name, extra_config='takeover_after = "6s"\nmax_parallel = 1'
    )
    try:
        yield cluster
    finally:
        cluster.stop_all()
        drop_database(postgres_server, name)
