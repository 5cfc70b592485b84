"""The signed digests as a user and an auditor run them: `audit keygen`, `audit digest`,
`audit verify --public-key` on a copy of the store without the audit key and on a native
export, a tampered copy caught, a key rotation, and `audit forward` to rsyslog over TLS."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli import driftwarden
from tests.integration.conftest import DemoStack, Fleet
from tests.rsyslog import Rsyslog

pytestmark = pytest.mark.engine


def auditor_copy(fleet: Fleet, root: Path) -> Path:
    """The store alone, where the auditor has no audit key: their config."""
    state = root / "state"
    state.mkdir(parents=True)
    with (
        sqlite3.connect(fleet.state_dir / "driftwarden.db") as source,
        sqlite3.connect(state / "driftwarden.db") as copy,
    ):
        source.backup(copy)  # with what is still in the write-ahead log
    config = root / "driftwarden.toml"
    config.write_text(f'[daemon]\nstate_dir = "{state}"\n')
    return config


def test_a_digest_an_auditor_verifies_with_the_public_key_alone(
    fleet: Fleet, demo: DemoStack, tmp_path: Path
) -> None:
    (demo.files / "motd.txt").write_text("HACKED\n")
    assert fleet.scan("--check", "drift").code == 3
    unsigned = fleet.cli("audit", "digest")
    assert unsigned.code == 2
    assert "no audit signing key" in unsigned.stderr

    made = fleet.cli("audit", "keygen", "--json")
    assert made.code == 0, made.stderr
    public = Path(made.json["public_key"])
    assert Path(made.json["private_key"]) == fleet.state_dir / "audit-signing-key"
    assert fleet.cli("audit", "keygen").code == 1, "never over an existing key"
    first = fleet.cli("audit", "digest", "--json").json
    assert (first["number"], first["first_seq"]) == (1, 1)
    assert fleet.scan("--check", "drift").code == 3
    second = fleet.cli("audit", "digest").stdout
    assert second.startswith("digest 2 signed: events ")

    auditor = auditor_copy(fleet, tmp_path / "auditor")
    with_key = driftwarden(auditor, "audit", "verify")
    assert with_key.code != 0
    assert "no audit key" in with_key.stderr
    report = driftwarden(auditor, "audit", "verify", "--public-key", str(public), "--json")
    assert report.code == 0, report.stdout + report.stderr
    assert report.json["ok"] is True
    assert report.json["digests"] == 2
    assert report.json["keys"] == [made.json["fingerprint"]]
    said = driftwarden(auditor, "audit", "verify", "--public-key", str(public)).stdout
    assert "ok: 2 digests verified with the public key" in said
    assert "not proven without the audit key" in said

    export = tmp_path / "export.jsonl"
    export.write_text(driftwarden(auditor, "audit", "export", "--format", "native").stdout)
    offline = driftwarden(auditor, "audit", "verify", "--public-key", str(public), "--export",
                          str(export), "--json")  # fmt: skip
    assert offline.code == 0, offline.stdout
    assert offline.json["digests"] == 2

    with sqlite3.connect(auditor.parent / "state" / "driftwarden.db") as db:
        db.execute("DROP TRIGGER audit_events_no_update")
        db.execute("UPDATE audit_events SET actor = 'nobody' WHERE seq = 2")
    broken = driftwarden(auditor, "audit", "verify", "--public-key", str(public))
    assert broken.code == 4
    assert "BROKEN at seq 1 (modified)" in broken.stdout


def test_a_rotated_key_is_named_and_cross_signed(
    fleet: Fleet, demo: DemoStack, tmp_path: Path
) -> None:
    old = fleet.cli("audit", "keygen", "--json").json
    assert fleet.scan("--check", "drift").code == 0
    assert fleet.cli("audit", "digest").code == 0
    new = fleet.cli("audit", "keygen", "--out", str(tmp_path / "new-key"), "--json").json
    fleet.write_config(f'\n[audit]\nsigning_key_file = "{new["private_key"]}"\n'
                       f'previous_signing_key_file = "{old["private_key"]}"\n')  # fmt: skip
    assert fleet.scan("--check", "drift").code == 0
    rotated = fleet.cli("audit", "digest", "--json").json
    assert (rotated["key"], rotated["previous_key"]) == (new["fingerprint"], old["fingerprint"])
    both = fleet.cli("audit", "verify", "--public-key", old["public_key"], "--public-key",
                     new["public_key"])  # fmt: skip
    assert both.code == 0, both.stdout
    assert "key rotated at digest 2" in both.stdout
    assert "cross-signed by the old key" in both.stdout
    only_old = fleet.cli("audit", "verify", "--public-key", old["public_key"], "--json")
    assert (only_old.code, only_old.json["problem"]) == (4, "unknown-key")


def test_audit_forward_sends_everything_to_rsyslog_over_tls(
    fleet: Fleet, demo: DemoStack, rsyslog_tls: Rsyslog
) -> None:
    assert fleet.scan("--check", "drift").code == 0
    fleet.write_config(f'\n[[audit.forward]]\nname = "siem"\nurl = "{rsyslog_tls.url}"\n'
                       f'ca_file = "{rsyslog_tls.ca_file}"\nhostname = "dw-host"\n')  # fmt: skip
    sent = fleet.cli("audit", "forward", "--json")
    assert sent.code == 0, sent.stdout + sent.stderr
    (destination,) = sent.json["destinations"]
    assert destination["behind"] == 0
    exported = [json.loads(line) for line in
                fleet.cli("audit", "export", "--format", "native").stdout.splitlines()]  # fmt: skip
    received = rsyslog_tls.received()
    assert [json.loads(r.body)["metadata"]["sequence"] for r in received] == [
        e["seq"] for e in exported
    ]
    assert all(r.hostname == "dw-host" and r.app_name == "driftwarden" for r in received)
    assert [r.msgid for r in received] == [e["action"] for e in exported]
    again = fleet.cli("audit", "forward", "--json")  # nothing twice
    assert again.json["destinations"][0]["behind"] == 0
    assert len(rsyslog_tls.received()) == len(received)
    assert f"audit forward siem ({rsyslog_tls.url}): up to date" in fleet.cli("status").stdout


def test_a_wrong_ca_is_refused_and_nothing_is_counted_as_sent(
    fleet: Fleet, demo: DemoStack, rsyslog_tls: Rsyslog, tmp_path: Path
) -> None:
    assert fleet.scan("--check", "drift").code == 0
    other = Rsyslog(tmp_path / "other", tls=True)
    other._config()  # writes a CA of its own
    fleet.write_config(f'\n[[audit.forward]]\nname = "siem"\nurl = "{rsyslog_tls.url}"\n'
                       f'ca_file = "{other.ca_file}"\n')  # fmt: skip
    refused = fleet.cli("audit", "forward", "--timeout", "3s", "--json")
    assert refused.code == 1
    (destination,) = refused.json["destinations"]
    assert destination["seq"] == 0
    assert "CERTIFICATE_VERIFY_FAILED" in destination["last_error"]
    assert rsyslog_tls.received() == []
    (shown,) = fleet.cli("status", "--json").json["audit"]["forward"]
    assert (shown["name"], shown["seq"], shown["behind"]) == ("siem", 0, shown["head"])
    assert shown["failures"] >= 1
    assert "events behind; failing: " in fleet.cli("status").stdout
