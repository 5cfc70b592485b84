"""The state audit on a backend that keeps no checkpoint per update (Pulumi's PostgreSQL
backend, on a real server): the state export read at each scan is compared with the one
read before, and a difference is put down to the update recorded since — or, with none,
to an edit no update accounts for."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.conftest import Fleet
from tests.pgserver import PostgresServer, create_database, drop_database
from tests.store.conftest import postgres_server

__all__ = ["postgres_server"]

FILE_URN_END = "::settings"


def state_changes(fleet: Fleet, stack: str) -> list[dict[str, Any]]:
    result = fleet.cli("history", "--stack", stack, "--json")
    assert result.code == 0, result.stderr
    return list(result.json["state_changes"])


def test_a_refresh_and_a_state_delete_on_the_postgresql_backend(
    tmp_path: Any, postgres_server: PostgresServer
) -> None:
    server = postgres_server
    create_database(server, "pulumi_state_audit")
    try:
        backend = (f"postgres://{server.user}:{server.password}@{server.host}:{server.port}"
                   "/pulumi_state_audit?sslmode=disable")  # fmt: skip
        audit_refresh_and_delete(Fleet(root=tmp_path, daemon=f'backend_url = "{backend}"'))
    finally:
        drop_database(server, "pulumi_state_audit")


def audit_refresh_and_delete(fleet: Fleet) -> None:
    demo = fleet.add("pg")
    assert fleet.scan("--check", "drift").code == 0  # the baseline export
    assert state_changes(fleet, "pg") == []

    settings = demo.files / "app" / "settings.ini"
    settings.write_text("[server]\nport = 8080\nlog_level = debug\n")
    fleet.pulumi(demo, "refresh", "--yes", "--skip-preview")
    fleet.scan("--check", "drift")
    refreshed = [c for c in state_changes(fleet, "pg") if c["urn"].endswith(FILE_URN_END)]
    assert refreshed, state_changes(fleet, "pg")
    assert {c["cause"] for c in refreshed} == {"refresh"}
    assert any("log_level = debug" in json.dumps(c["after"]) for c in refreshed)
    assert not any("log_level = debug" in json.dumps(c["before"]) for c in refreshed)

    readme = refreshed[0]["urn"].removesuffix(FILE_URN_END) + "::readme"
    fleet.pulumi(demo, "state", "delete", readme, "--yes")
    fleet.scan("--check", "drift")
    edits = [c for c in state_changes(fleet, "pg") if c["cause"] == "edit"]
    assert [(c["urn"], c["change"]) for c in edits] == [(readme, "delete")]
    assert edits[0]["actor"].startswith("unknown")

    fleet.scan("--check", "drift")  # nothing new: nothing audited twice
    assert len([c for c in state_changes(fleet, "pg") if c["cause"] == "edit"]) == 1
