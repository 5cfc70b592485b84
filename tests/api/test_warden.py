"""driftwarden's Python API as a newcomer's script uses it: only `import driftwarden` and
the names in `driftwarden.__all__`, against the real Pulumi engine on a copy of the
deployed demo stack (tests/integration's fixtures build the fleet; nothing here reaches
into the package). One scan for the whole module: everything else reads it back."""

from __future__ import annotations

import contextlib
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import driftwarden
from tests.conftest import REPO
from tests.integration.conftest import Fleet
from tests.integration.deployed import Deployment

pytestmark = pytest.mark.engine

# The README's example, verbatim (the first test checks that it still is).
README_EXAMPLE = """\
from driftwarden import Warden

with Warden.open("driftwarden.toml") as warden:
    for result in warden.scan("demo"):
        print(result.stack, result.check, result.status, len(result.changes))
"""


@dataclass
class Scanned:
    fleet: Fleet
    printed: str  # what the example printed
    environ_before: dict[str, str]
    environ_after: dict[str, str]
    children_after: list[int]  # our child processes once the `with` block ended


def children() -> list[int]:
    """This process's live child processes (engine workers, pulumi, …)."""
    found = []
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(pid))
    return found


def open_files(prefix: Path) -> list[str]:
    """What this process has open under `prefix` (the store's files)."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith(str(prefix)):
                found.append(target)
    return found


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory, deployed_demo: Deployment) -> Scanned:
    """The demo stack with its motd edited out of band, scanned by the README's example
    run as a script in the config's directory."""
    fleet = Fleet(root=tmp_path_factory.mktemp("api"), template=deployed_demo)
    demo = fleet.add("demo", checks=("drift",))
    (demo.files / "motd.txt").write_text("HACKED\n")
    assert not children(), "a child process is left over from before"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(fleet.root)
        patch.delenv("DRIFTWARDEN_STATE_DIR", raising=False)  # the config names it
        patch.delenv("DRIFTWARDEN_CONFIG", raising=False)
        # An engine worker removes this from its own environment, never from ours.
        patch.setenv("PULUMI_OPTION_SKIP_ME", "1")
        before = dict(os.environ)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(README_EXAMPLE, {"__name__": "__main__"})
        after = dict(os.environ)
    deadline = time.monotonic() + 10  # closed workers read the closed pipe, then exit
    while children() and time.monotonic() < deadline:
        time.sleep(0.05)
    return Scanned(fleet, printed.getvalue(), before, after, children())


def test_the_readme_example_scans_the_demo_stack(scanned: Scanned) -> None:
    assert README_EXAMPLE in (REPO / "README.md").read_text(), "README's example changed"
    assert scanned.printed == "demo drift drifted 1\n"


def test_the_callers_environment_is_unchanged(scanned: Scanned) -> None:
    assert scanned.environ_after == scanned.environ_before
    assert scanned.environ_after["PULUMI_OPTION_SKIP_ME"] == "1"


def test_leaving_the_with_block_ends_the_engine_workers(scanned: Scanned) -> None:
    assert scanned.children_after == []


def test_a_reader_reads_back_what_the_scan_recorded(scanned: Scanned) -> None:
    fleet = scanned.fleet
    store_files = sorted(fleet.state_dir.glob("driftwarden.db*"))
    written = {path: path.read_bytes() for path in store_files if not path.name.endswith("-shm")}
    with driftwarden.Warden.open_reader(fleet.config_path) as warden:
        assert warden.read_only
        assert warden.stacks == ["demo"]
        status = warden.status()
        (operation,) = warden.history("demo")
        (finding,) = warden.findings("demo")
        events = warden.audit_log(stack="demo")
        verified = warden.verify()
        with pytest.raises(driftwarden.DriftwardenError, match="read-only"):
            warden.scan("demo")
        with pytest.raises(driftwarden.DriftwardenError, match="no stack named"):
            warden.findings("nope")

    (row,) = status["stacks"]
    assert (row["stack"], row["state"], row["open_findings"]) == ("demo", "drifted", 1)
    assert row["last_scan"] == operation["started_at"]
    assert operation["kind"] == operation["check"] == driftwarden.Check.DRIFT
    assert (operation["trigger"], operation["status"]) == ("cli", "succeeded")
    assert "@" in operation["actor"]  # user@host, as the CLI records it
    assert finding["urn"].endswith("::motd")
    assert (finding["path"], finding["expected"], finding["actual"]) == (
        "content",
        "hello\n",
        "HACKED\n",
    )
    assert finding["last_operation_id"] == operation["operation_id"]
    assert {"operation.started", "operation.finished", "finding.opened"} <= {
        event["action"] for event in events
    }
    assert isinstance(verified, driftwarden.VerifyReport)
    assert verified.ok, verified.to_dict()
    assert verified.head_seq == status["audit"]["head"]

    # The CLI prints exactly these, and the reader wrote nothing.
    assert fleet.cli("status", "--json").json == status
    assert fleet.cli("drift", "show", "demo", "--json").json == {
        "stack": "demo",
        "findings": [finding],
    }
    assert fleet.cli("history", "--stack", "demo", "--json").json["operations"] == [operation]
    assert {path: path.read_bytes() for path in written} == written


def test_closing_the_warden_closes_the_store(scanned: Scanned) -> None:
    store = scanned.fleet.state_dir / "driftwarden.db"
    warden = driftwarden.Warden.open_reader(scanned.fleet.config_path)
    assert not open_files(store)  # opened on first use
    with warden:
        assert warden.history(limit=1)
        assert open_files(store)
    assert not open_files(store)
    with pytest.raises(driftwarden.DriftwardenError, match="closed"):
        warden.status()


def test_the_public_surface_is_small() -> None:
    assert set(driftwarden.__all__) == {
        "Check", "CheckResult", "CheckStatus", "Config", "DeliveryReport", "DigestReport",
        "DriftwardenError", "Remediation", "ScanReport", "Severity", "StackScan",
        "VerifyReport", "Warden", "__version__",
    }  # fmt: skip
    for name in driftwarden.__all__:
        assert getattr(driftwarden, name) is not None
    with pytest.raises(AttributeError):
        driftwarden.Runtime  # noqa: B018
