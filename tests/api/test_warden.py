"""driftwarden's Python API as a newcomer's script uses it: only `import driftwarden` and
the names in `driftwarden.__all__`, against the real Pulumi engine on a copy of the
deployed demo stack (tests/integration's fixtures build the fleet; nothing here reaches
into the package). One scan for the module's readers: everything else reads it back;
the outbox's, the trust's and remediation's tests make fleets of their own."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import driftwarden
from tests.conftest import REPO
from tests.integration.conftest import Fleet
from tests.integration.deployed import Deployment
from tests.notify.conftest import HttpEndpoint

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


def test_the_outbox_a_digest_and_a_test_message(fleet: Fleet, http_endpoint: HttpEndpoint) -> None:
    demo = fleet.add("demo", checks=("drift",))
    fleet.write_config(f'\n[notifications]\ndefault_targets = ["hook"]\n\n[[targets]]\n'
                       f'name = "hook"\nurls = ["{http_endpoint.url()}"]\n'
                       f'digest = "daily at 09:00"\n')  # fmt: skip
    (demo.files / "motd.txt").write_text("HACKED\n")
    with driftwarden.Warden.open(fleet.config_path) as warden:
        assert warden.scan("demo").exit_code == 3  # and it delivered its drift.new
        (digest,) = warden.digest()
        tested = warden.notify_test()
        everything = warden.notifications()
        sent = warden.notifications("sent", limit=1)
        events = warden.audit_log(limit=5)
        with pytest.raises(driftwarden.DriftwardenError, match="no target named 'pager'"):
            warden.digest("pager")
        with pytest.raises(driftwarden.DriftwardenError, match="status is one of"):
            warden.notifications("lost")  # type: ignore[arg-type]

    assert (digest["target"], digest["status"], digest["stacks"], digest["findings"]) == (
        "hook", "queued", 1, 1,
    )  # fmt: skip
    assert digest["error"] is None
    assert tested == [{"target": "hook", "ok": True, "error": None}]
    by_event = {row["event"]: row for row in everything}
    assert sorted(by_event) == ["drift.digest", "drift.new"]
    assert by_event["drift.digest"]["notification_id"] == digest["notification_id"]
    rows = {(row["target"], row["stack"], row["status"], row["attempts"]) for row in everything}
    assert rows == {("hook", "demo", "sent", 1), ("hook", None, "sent", 1)}
    assert sent == everything[:1]
    titles = [request.json()["title"] for request in http_endpoint.requests]
    assert titles == [by_event["drift.new"]["title"], by_event["drift.digest"]["title"],
                      "[driftwarden] test notification (hook)"]  # fmt: skip
    test_event = next(event for event in events if event["action"] == "notification.test")
    assert (test_event["outcome"], test_event["details"]) == (
        "sent", {"target": "hook", "error": None},
    )  # fmt: skip
    assert fleet.cli("notify", "list", "--json").json == {"notifications": everything}


def test_signing_and_forwarding_the_audit_chain(fleet: Fleet, http_endpoint: HttpEndpoint) -> None:
    fleet.add("demo", checks=("drift",))
    fleet.write_config(f'\n[[audit.forward]]\nname = "lake"\nformat = "native"\n'
                       f'url = "{http_endpoint.url("/ingest", "http")}"\n')  # fmt: skip
    with driftwarden.Warden.open(fleet.config_path) as warden:
        with pytest.raises(driftwarden.DriftwardenError, match="no audit signing key"):
            warden.sign_digest()
        made = driftwarden.Warden.keygen(config=fleet.config_path)  # no store, no Warden
        with pytest.raises(driftwarden.DriftwardenError, match="already exists"):
            driftwarden.Warden.keygen(made["private_key"])
        digest = warden.sign_digest()
        with pytest.raises(driftwarden.DriftwardenError, match="timeout must be positive"):
            warden.forward(timeout=0)
        forwarded = warden.forward(timeout=30)
        trust = warden.status()["audit"]
        signed = warden.verify(public_keys=[made["public_key"]])

    assert made["private_key"] == str(fleet.state_dir / "audit-signing-key")
    assert Path(made["public_key"]).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert digest is not None
    assert (digest["number"], digest["first_seq"], digest["key"]) == (1, 1, made["fingerprint"])
    head = trust["head"]
    assert digest["head"].startswith(f"{head}:")  # the digest is the newest event
    assert forwarded == [{"name": "lake", "seq": head, "head": head, "behind": 0,
                          "failures": 0, "last_error": None}]  # fmt: skip
    assert [(row["name"], row["seq"], row["behind"]) for row in trust["forward"]] == [
        ("lake", head, 0),
    ]  # fmt: skip
    received = [json.loads(line) for request in http_endpoint.requests
                for line in request.body.decode().splitlines()]  # fmt: skip
    assert [event["seq"] for event in received] == list(range(1, head + 1))
    assert received[-1]["action"] == "audit.digest"
    assert isinstance(signed, driftwarden.DigestReport)
    assert signed.ok, signed.to_dict()
    assert signed.digests == 1


def test_upgrade_reports_the_stores_revision(fleet: Fleet) -> None:
    fleet.add("demo", checks=("drift",))
    with driftwarden.Warden.open(fleet.config_path) as warden:
        done = warden.upgrade()
    with (
        driftwarden.Warden.open_reader(fleet.config_path) as reader,
        pytest.raises(driftwarden.DriftwardenError, match="read-only"),
    ):
        reader.upgrade()
    db = fleet.state_dir / "driftwarden.db"
    with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert done["revision"] == revision
    assert done["database_url"].endswith(str(db))
    assert fleet.cli("db", "upgrade").stdout == (
        f"schema at revision {revision} ({done['database_url']})\n"
    )


def test_a_dry_run_remediation_is_the_document_remediate_json_prints(fleet: Fleet) -> None:
    demo = fleet.add("demo", checks=("drift",))
    (demo.files / "motd.txt").write_text("HACKED\n")
    with driftwarden.Warden.open(fleet.config_path) as warden:
        result = warden.remediate("demo", mode="up", dry_run=True)
        (planned,) = warden.history("demo")
    assert isinstance(result, driftwarden.Remediation)
    document = result.to_dict()
    assert json.loads(json.dumps(document)) == document  # what `--json` prints, as is
    assert {key: document[key] for key in ("stack", "mode", "status", "allowed", "reasons",
                                           "apply_operation_id", "verification", "guarantee",
                                           "error")} == {
        "stack": "demo", "mode": "up", "status": "dry_run", "allowed": True, "reasons": [],
        "apply_operation_id": None, "verification": None, "guarantee": "exact_plan",
        "error": None,
    }  # fmt: skip
    assert document["plan_operation_id"] == planned["operation_id"]
    (change,) = document["plan"]
    assert change["urn"].endswith("::motd")
    assert [prop["path"] for prop in change["properties"]] == ["content"]
