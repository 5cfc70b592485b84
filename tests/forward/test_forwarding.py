"""`driftwarden run` forwarding its audit chain as it happens: every event reaches a real
rsyslog (RFC 5424, octet counting) and a real HTTP receiver (NDJSON, native) across an
outage of both — stopped and started again — in order, at least once, nothing secret on
the wire; the digests signed on schedule and at shutdown travel with the events, so the
receiver's copy verifies with the public key alone and the syslog line of the last
digest anchors its tail."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.test_daemon import Daemon, by_stack, operations, trigger, wait_for
from tests.integration.conftest import SECRET_TOKEN, DemoStack, Fleet
from tests.notify.conftest import HttpEndpoint
from tests.rsyslog import Rsyslog

pytestmark = pytest.mark.engine

TOKEN = "forward-token-8c1f2e9a7b"


def head(fleet: Fleet) -> int:
    with sqlite3.connect(f"{(fleet.state_dir / 'driftwarden.db').as_uri()}?mode=ro",
                         uri=True, timeout=30) as db:  # fmt: skip
        return int(db.execute("SELECT max(seq) FROM audit_events").fetchone()[0] or 0)


def digests(fleet: Fleet) -> int:
    with sqlite3.connect(f"{(fleet.state_dir / 'driftwarden.db').as_uri()}?mode=ro",
                         uri=True, timeout=30) as db:  # fmt: skip
        query = "SELECT count(*) FROM audit_events WHERE action = 'audit.digest'"
        return int(db.execute(query).fetchone()[0])


def syslog_seqs(rsyslog: Rsyslog) -> list[int]:
    return [json.loads(r.body)["metadata"]["sequence"] for r in rsyslog.received()]


def http_events(endpoint: HttpEndpoint) -> list[dict[str, Any]]:
    """What the receiver took: the batches it answered 2xx."""
    return [json.loads(line) for request in list(endpoint.requests)
            if request.path == "/ingest" and request.status < 300
            for line in request.body.decode().splitlines()]  # fmt: skip


def first_occurrences(seqs: list[int]) -> list[int]:
    seen: dict[int, None] = {}
    for seq in seqs:
        seen.setdefault(seq, None)
    return list(seen)


def test_every_event_reaches_rsyslog_and_http_across_an_outage(
    fleet: Fleet, demo: DemoStack, rsyslog: Rsyslog, http_endpoint: HttpEndpoint, tmp_path: Path
) -> None:
    public = fleet.cli("audit", "keygen", "--json").json["public_key"]
    token_file = tmp_path / "forward-token"
    token_file.write_text(TOKEN + "\n")
    demo.schedule = "every 1h"
    fleet.write_config(
        f'\n[audit]\ndigest_every = "3s"\nforward_retry_max = "2s"\n\n'
        f'[[audit.forward]]\nname = "siem"\nurl = "{rsyslog.url}"\nhostname = "dw-test"\n\n'
        f'[[audit.forward]]\nname = "lake"\nurl = "{http_endpoint.url("/ingest", "http")}"\n'
        f'format = "native"\ntoken_file = "{token_file}"\n'
    )
    (demo.files / "secrets" / "api-token").write_text("rotated-" + SECRET_TOKEN)
    (demo.files / "motd.txt").write_text("HACKED\n")
    daemon = Daemon(fleet)
    try:
        wait_for(lambda: by_stack(operations(fleet), "demo", status="succeeded"), 120, "a scan")
        wait_for(lambda: "operation.finished" in [r.msgid for r in rsyslog.received()], 30,
                 "the scan's events in rsyslog")  # fmt: skip
        wait_for(lambda: digests(fleet) >= 1, 30, "a digest on schedule")

        rsyslog.stop()  # the outage: both receivers down
        http_endpoint.fail_with(503)
        before = head(fleet)
        trigger(fleet, "demo")
        wait_for(lambda: by_stack(operations(fleet), "demo", trigger="request",
                                  status="succeeded"), 120, "a scan in the outage")  # fmt: skip
        wait_for(lambda: digests(fleet) >= 2, 30, "a digest in the outage")
        during = head(fleet)
        assert during > before
        assert max(syslog_seqs(rsyslog)) < during, "nothing was taken while it was down"
        refused = [r for r in http_endpoint.requests if r.status == 503]
        assert refused, "the HTTP receiver was tried in the outage"

        rsyslog.start()
        http_endpoint.succeed()
        wait_for(lambda: set(range(1, head(fleet) + 1)) <= set(syslog_seqs(rsyslog)), 60,
                 "every event in rsyslog after the outage")  # fmt: skip
        wait_for(lambda: {e["seq"] for e in http_events(http_endpoint)} >= set(
            range(1, head(fleet) + 1)), 60, "every event at the HTTP receiver")  # fmt: skip
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        daemon.kill()

    exported = [json.loads(line) for line in
                fleet.cli("audit", "export", "--format", "native").stdout.splitlines()]  # fmt: skip
    everything = [e["seq"] for e in exported]
    assert everything == list(range(1, len(exported) + 1))
    assert exported[-1]["action"] == "audit.digest", "the shutdown digest is the last event"
    received = rsyslog.received()
    seqs = syslog_seqs(rsyslog)
    assert first_occurrences(seqs) == everything, "every event, in order (a resend may repeat)"
    by_seq = {json.loads(r.body)["metadata"]["sequence"]: r for r in received}
    for event in exported:
        line = by_seq[event["seq"]]
        assert (line.hostname, line.app_name, line.msgid) == ("dw-test", "driftwarden",
                                                              event["action"])  # fmt: skip
        assert json.loads(line.body)["unmapped"]["hash"] == event["hash"]
    wire = rsyslog.received_file.read_text() + "".join(
        r.body.decode() for r in http_endpoint.requests)  # fmt: skip
    assert SECRET_TOKEN not in wire
    assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}"
               for r in http_endpoint.requests)  # fmt: skip
    assert {r.headers.get("Content-Type") for r in http_endpoint.requests} == {
        "application/x-ndjson"}  # fmt: skip

    # What the receiver holds verifies with the public key alone, anchored by the head of
    # the last digest as syslog received it.
    lake: dict[int, dict[str, Any]] = {}
    for event in http_events(http_endpoint):
        lake.setdefault(event["seq"], event)
    copy = tmp_path / "lake.jsonl"
    copy.write_text("".join(json.dumps(lake[seq]) + "\n" for seq in sorted(lake)))
    last_digest = next(json.loads(r.body) for r in reversed(received)
                       if r.msgid == "audit.digest")  # fmt: skip
    anchor = f"{last_digest['unmapped']['seq']}:{last_digest['unmapped']['hash']}"
    verified = fleet.cli("audit", "verify", "--public-key", public, "--export", str(copy),
                         "--expect-head", anchor, "--json")  # fmt: skip
    assert verified.code == 0, verified.stdout
    assert verified.json["digests"] >= 3
    assert verified.json["signed_through"] == len(exported) - 1
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(json.dumps(lake[seq]) + "\n" for seq in sorted(lake)[:-3]))
    truncated = fleet.cli("audit", "verify", "--public-key", public, "--export", str(cut),
                          "--expect-head", anchor, "--json")  # fmt: skip
    assert (truncated.code, truncated.json["problem"]) == (4, "truncated")
