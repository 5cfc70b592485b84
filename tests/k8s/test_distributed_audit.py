"""The audit source in distributed mode: with the stack on a 1 h schedule, a write by
mallory (her own token) to a managed object, read from the real API server's audit log by
the elected scheduler of `driftwarden worker` processes, requests a drift check through
the shared queue within seconds, and the finding and its notification name her."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.distributed.cluster import Cluster as Workers
from tests.distributed.cluster import wait_until
from tests.k8s.conftest import PROVIDER_VERSION, KubeFleet
from tests.k8s.test_audit import file_source, notified_naming, notifying
from tests.notify.conftest import HttpEndpoint
from tests.pgserver import PostgresServer, create_database, drop_database
from tests.store.conftest import postgres_server

pytestmark = pytest.mark.engine

__all__ = ["postgres_server"]


@pytest.fixture
def workers(
    k8s: KubeFleet, postgres_server: PostgresServer, http_endpoint: HttpEndpoint
) -> Iterator[Workers]:
    assert k8s.cluster is not None
    name = f"dist_audit_{os.getpid()}"
    create_database(postgres_server, name)
    extra = (
        f'pulumi_home = "{k8s.pulumi_home}"\ntakeover_after = "6s"\n\n'
        f'[[plugins]]\nname = "kubernetes"\nversion = "{PROVIDER_VERSION}"\n'
        f'path = "{k8s.cluster.provider}"\n' + file_source(k8s) + notifying(http_endpoint)
    )
    cluster = Workers(k8s, postgres_server, name, extra_config=extra)
    try:
        yield cluster
    finally:
        cluster.stop_all()
        drop_database(postgres_server, name)


def test_a_write_requests_a_check_through_the_queue(
    k8s: KubeFleet, workers: Workers, http_endpoint: HttpEndpoint
) -> None:
    assert k8s.cluster is not None
    stack = k8s.deploy(schedule="every 1h")
    k8s.wait_for_controllers(stack)
    workers.write_fleet_config()
    upgraded = k8s.cli("db", "upgrade")  # the shared store, and the audit key hosts copy
    assert upgraded.code == 0, upgraded.stderr
    workers.start("host-a")

    def checks() -> list[str]:
        return [
            op.trigger
            for op in workers.operations()
            if op.stack == "web" and op.kind == "drift" and op.status == "succeeded"
        ]

    wait_until("the first scheduled check", lambda: checks() == ["schedule"], 180)
    http_endpoint.requests.clear()
    k8s.cluster.kubectl(
        "-n",
        stack.namespace,
        "patch",
        "configmap",
        "app-config",
        "--type=merge",
        '-p={"data":{"LOG_LEVEL":"queued"}}',
        who="mallory",
    )
    wait_until("a check the audit log requested", lambda: "request" in checks(), 60)
    wait_until(
        "the notification naming mallory", lambda: notified_naming(http_endpoint, "mallory"), 60
    )
    findings = k8s.cli("drift", "show", "web", "--json").json["findings"]
    (changed,) = [f for f in findings if f["path"] == "data.LOG_LEVEL"]
    assert changed["actual"] == "queued"
    assert (changed["attribution"]["kind"], changed["attribution"]["user"]) == (
        "platform",
        "mallory",
    )
    requested = workers.query("SELECT requested_by FROM scan_requests WHERE stack = 'web'")
    assert requested == [("audit-source:cluster",)]
