"""One smoke test per command through the console script, as a user runs it.

Most tests run commands in process (tests/cli.py). Here each command also runs through
`.venv/bin/driftwarden` in a subprocess and must print what the in-process run printed,
with the same exit code: the entry point works, and the in-process runner is faithful.
(`run`, `trigger` and `remediate` run as processes in tests/daemon and tests/remediation.)
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.conftest import DemoStack, Fleet

pytestmark = pytest.mark.engine

COMMANDS = ("scan", "run", "trigger", "status", "history", "remediate", "report", "serve", "drift",
            "audit", "config", "db", "notify", "pulumi-env")  # fmt: skip

# Read and outbox commands: the same stdout and exit code both ways, on the same store.
SAME_BOTH_WAYS = [
    ("--version",),
    ("status", "--json"),
    ("history", "--json"),
    ("drift", "show", "demo", "--json"),
    ("drift", "show", "demo"),
    ("audit", "verify", "--json"),
    ("audit", "export"),
    ("audit", "log", "--json"),
    ("notify", "list", "--json"),
    ("notify", "send", "--json"),
    ("config", "check"),
    ("pulumi-env", "demo"),
    ("db", "upgrade"),
    ("drift", "show", "nosuchstack"),
]


def test_every_command_prints_the_same_through_the_console_script(
    fleet: Fleet, demo: DemoStack
) -> None:
    (demo.files / "motd.txt").write_text("edited by hand\n")
    scanned = fleet.cli("scan", "--check", "drift", "--json", subprocess=True)
    assert scanned.code == 3, scanned.stderr
    assert scanned.result("demo", "drift")["status"] == "drifted"

    for args in SAME_BOTH_WAYS:
        in_process = fleet.cli(*args)
        console_script = fleet.cli(*args, subprocess=True)
        shown = " ".join(args)
        assert console_script.code == in_process.code, f"{shown}: {console_script.stderr}"
        assert console_script.stdout == in_process.stdout, shown
        assert console_script.stderr == in_process.stderr, shown

    # Help is fitted to the terminal's width, which differs: the same commands listed.
    for helped in (fleet.cli("--help"), fleet.cli("--help", subprocess=True)):
        assert helped.code == 0
        listed = {line.split()[0] for line in helped.stdout.splitlines() if line.startswith("  ")}
        assert set(COMMANDS) <= listed, helped.stdout

    assert fleet.cli("drift", "show", "nosuchstack").code == 2
    assert "motd" in fleet.cli("drift", "show", "demo").stdout


# A command loads what it uses: reading the store never loads the engine (the Pulumi SDK,
# gRPC) or the notifier (apprise); that is most of a cold start.
MODULES_AT_EXIT = """
import atexit, json, sys
from driftwarden.cli import main
atexit.register(lambda: sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules))))
sys.argv = ["driftwarden", *sys.argv[1:]]
main()
"""
NOT_FOR_READERS = (
    "pulumi",
    "grpc",
    "apprise",
    "alembic",
    "driftwarden.engine.runner",
    "driftwarden.notify",
)


def test_help_status_and_history_load_neither_the_engine_nor_the_notifier(
    fleet: Fleet, demo: DemoStack
) -> None:
    assert fleet.scan("--check", "drift").code == 0
    for args in (
        ("--help",),
        ("status", "--json"),
        ("history", "--json"),
        ("drift", "show", "demo"),
    ):
        ran = subprocess.run(
            [sys.executable, "-c", MODULES_AT_EXIT, "--config", str(fleet.config_path), *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        loaded = json.loads(ran.stderr.rpartition("MODULES ")[2])
        unwanted = [m for m in loaded if m.startswith(NOT_FOR_READERS)]
        assert unwanted == [], f"{' '.join(args)} loaded {unwanted[:5]}"
    # `scan` runs the engine in its workers only; `pulumi-env` loads it (the check works).
    modules = {}
    for args in (("scan",), ("pulumi-env", "demo")):
        ran = subprocess.run(
            [sys.executable, "-c", MODULES_AT_EXIT, "--config", str(fleet.config_path), *args],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        modules[args[0]] = json.loads(ran.stderr.rpartition("MODULES ")[2])
    assert not [m for m in modules["scan"] if m.startswith(("pulumi", "grpc"))]
    assert "pulumi.automation" in modules["pulumi-env"]
