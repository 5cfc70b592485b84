"""Scans are recorded: operations, findings through their lifecycle, the audit chain,
and crash recovery, all on the real engine and read back through the CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from typing import Any

import pytest

from driftwarden.service.statedir import ENV_STATE_DIR
from tests.cli import DRIFTWARDEN
from tests.integration.conftest import DemoStack, Fleet

pytestmark = pytest.mark.engine


def cli_json(fleet: Fleet, *args: str) -> Any:
    result = fleet.cli(*args, "--json")
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def audit_actions(fleet: Fleet) -> list[dict[str, Any]]:
    result = fleet.cli("audit", "export", "--format", "jsonl")
    assert result.code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_finding_lifecycle_across_scans(fleet: Fleet, demo: DemoStack) -> None:
    motd = demo.files / "motd.txt"
    motd.write_text("HACKED\n")
    for _ in range(3):
        assert fleet.scan("--check", "drift").code == 3

    (finding,) = cli_json(fleet, "drift", "show", "demo")["findings"]
    assert finding["path"] == "content"
    assert (finding["expected"], finding["actual"]) == ("hello\n", "HACKED\n")
    assert finding["occurrences"] == 3
    first_seen = finding["first_seen"]

    motd.write_text("HACKED AGAIN\n")
    assert fleet.scan("--check", "drift").code == 3
    (changed,) = cli_json(fleet, "drift", "show", "demo")["findings"]
    assert changed["finding_id"] == finding["finding_id"]
    assert changed["actual"] == "HACKED AGAIN\n"
    assert changed["occurrences"] == 4
    assert changed["first_seen"] == first_seen

    # A failed check in between resolves nothing.
    motd.write_text("hello\n")
    wrong = fleet.root / "wrong-passphrase"
    wrong.write_text("nope\n")
    fleet.write_config(f'passphrase_file = "{wrong}"')
    assert fleet.scan("--check", "drift").code == 1
    (still_open,) = cli_json(fleet, "drift", "show", "demo")["findings"]
    assert still_open["finding_id"] == finding["finding_id"]

    fleet.write_config()
    assert fleet.scan("--check", "drift").code == 0
    assert cli_json(fleet, "drift", "show", "demo")["findings"] == []

    transitions = [
        event["activity_name"]
        for event in audit_actions(fleet)
        if event["activity_name"].startswith("finding.")
    ]
    assert transitions == ["finding.opened", "finding.changed", "finding.resolved"]
    verify = cli_json(fleet, "audit", "verify")
    assert verify["ok"] is True


def test_history_and_status_show_what_ran(fleet: Fleet, demo: DemoStack) -> None:
    (demo.files / "README.txt").unlink()
    scan = fleet.scan("--json")
    assert scan.code == 3
    operations = cli_json(fleet, "history", "--stack", "demo")["operations"]
    assert [(o["check"], o["status"], o["outcome"]) for o in operations] == [
        ("code", "succeeded", "in_sync"),
        ("drift", "succeeded", "drifted"),
    ]
    drift = operations[1]
    assert drift["operation_id"] == scan.result("demo", "drift")["operation_id"]
    assert drift["trigger"] == "cli"
    assert "@" in drift["actor"]
    assert drift["resource_changes"] == 1
    assert drift["cli_version"] == "3.259.0"
    assert drift["started_at"].endswith("Z")

    (row,) = cli_json(fleet, "status")["stacks"]
    assert row["stack"] == "demo"
    assert row["state"] == "drifted"
    assert row["open_findings"] == 1
    assert row["last_scan"] == operations[0]["started_at"]

    table = fleet.cli("status")
    assert table.code == 0
    assert "drifted" in table.stdout


def _running_operation(db: str) -> str | None:
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT id FROM operations WHERE status = 'running'").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def test_scan_killed_mid_engine_is_marked_interrupted_on_next_start(
    fleet: Fleet, demo: DemoStack
) -> None:
    # Make the program slow so that the kill lands while the engine runs it.
    main = demo.workdir / "__main__.py"
    main.write_text("import time\ntime.sleep(60)\n" + main.read_text())
    process = subprocess.Popen(
        [str(DRIFTWARDEN), "--config", str(fleet.config_path), "scan", "--check", "code"],
        env={k: v for k, v in os.environ.items() if k != ENV_STATE_DIR},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    db = str(fleet.state_dir / "driftwarden.db")
    deadline = time.monotonic() + 60
    operation_id = None
    while operation_id is None and time.monotonic() < deadline:
        time.sleep(0.2)
        operation_id = _running_operation(db)
    assert operation_id, "the scan never recorded a running operation"
    time.sleep(2)  # well inside the engine run
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    # Any writer's start recovers (a read command only reads: it writes no row).
    assert fleet.cli("db", "upgrade").code == 0
    status = fleet.cli("history", "--json")
    (operation,) = [
        o for o in json.loads(status.stdout)["operations"] if o["operation_id"] == operation_id
    ]
    assert operation["status"] == "interrupted"
    assert "died" in operation["error"]
    events = [e for e in audit_actions(fleet) if e["activity_name"] == "operation.interrupted"]
    assert len(events) == 1
    assert cli_json(fleet, "audit", "verify")["ok"] is True

    # Nothing else was lost: the next scan runs and is recorded normally.
    main.write_text(main.read_text().replace("import time\ntime.sleep(60)\n", ""))
    assert fleet.scan("--check", "drift").code == 0
