"""The dashboard over HTTP: each page's JSON twin is the CLI's `--json` data, `/metrics`
parses with Prometheus' own parser and agrees with the store, `/healthz`, the headers
that keep it read-only, and the credential on anything but loopback."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli import DRIFTWARDEN
from tests.integration.conftest import Fleet
from tests.web.conftest import Served, serve, stop

pytestmark = pytest.mark.engine

STATUS_KEYS = ("stack", "state", "open_findings", "last_scan", "next_scan", "running_on", "checks")


def test_each_page_has_a_json_twin_with_the_clis_data(dashboard: Served) -> None:
    fleet = dashboard.fleet
    status = {row["stack"]: row for row in fleet.cli("status", "--json").json["stacks"]}
    page = dashboard.json("/")
    assert isinstance(page, dict)
    for row in page["stacks"]:
        assert {key: row[key] for key in STATUS_KEYS} == status[row["stack"]]
    assert page == dashboard.json("/?format=json"), "Accept and ?format=json differ"
    by_name = {row["stack"]: row for row in page["stacks"]}
    assert by_name["demo"]["open_by_severity"] == {"high": 1, "unrated": 1}
    assert page["counts"]["open_by_severity"] == {"high": 1, "unrated": 1}

    stack = dashboard.json("/stacks/demo")
    assert isinstance(stack, dict)
    assert stack["findings"] == fleet.cli("drift", "show", "demo", "--json").json["findings"]
    history = fleet.cli("history", "--stack", "demo", "--json").json["operations"]
    assert stack["operations"] == history

    (finding_id,) = [f["finding_id"] for f in stack["findings"] if f["path"] == "content"
                     and "motd" in f["urn"]]  # fmt: skip
    finding = dashboard.json(f"/stacks/demo/findings/{finding_id}")
    assert isinstance(finding, dict)
    assert finding["finding"]["finding_id"] == finding_id
    assert [event["action"] for event in finding["timeline"]] == ["finding.opened"]

    audit = dashboard.json("/audit?stack=demo")
    log = fleet.cli("audit", "log", "--stack", "demo", "--limit", "100", "--json").json
    assert isinstance(audit, dict)
    assert audit["events"] == log["events"]
    verified = dashboard.json("/audit?verify=1")
    assert isinstance(verified, dict)
    assert verified["verify"] == fleet.cli("audit", "verify", "--json").json


def test_pages_are_read_only_escaped_and_say_what_is_missing(dashboard: Served) -> None:
    status, headers, body = dashboard.get("/stacks/demo")
    assert status == 200
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert headers["x-content-type-options"] == "nosniff"
    assert "app;dur=" in headers["server-timing"]
    assert b"&lt;script&gt;window.pwned" in body
    assert b"<script>" not in body
    for path in ("/stacks/nope", "/stacks/demo/findings/nope"):
        status, _, body = dashboard.get(path)
        assert status == 404, path
        assert b"no stack named" in body or b"no finding" in body
    status, _, body = dashboard.get("/stacks/nope", accept="application/json")
    assert status == 404
    assert json.loads(body) == {"error": "no stack named 'nope' in the config", "status": 404}
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(dashboard.url + "/", data=b"", method="POST"))
    assert refused.value.code == 405


def test_metrics_parse_and_agree_with_the_store(dashboard: Served) -> None:
    deadline = time.monotonic() + 30
    while True:  # the server verifies the chain once it has started
        status, headers, body = dashboard.get("/metrics")
        assert status == 200
        if b"driftwarden_audit_verify_ok" in body or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert headers["content-type"].startswith("text/plain; version=")
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    assert samples[("driftwarden_stack_state", (("stack", "demo"), ("state", "drifted")))] == 1
    assert samples[("driftwarden_stack_state", (("stack", "demo"), ("state", "in_sync")))] == 0
    assert samples[("driftwarden_stack_state", (("stack", "calm"), ("state", "in_sync")))] == 1
    assert samples[("driftwarden_open_findings", (("severity", "high"), ("stack", "demo")))] == 1
    assert samples[("driftwarden_check_up", (("check", "drift"), ("stack", "demo")))] == 1
    assert samples[("driftwarden_check_differences", (("check", "drift"), ("stack", "demo")))] == 1
    assert samples[("driftwarden_check_differences", (("check", "drift"), ("stack", "calm")))] == 0
    success = samples[("driftwarden_check_last_success_timestamp_seconds",
                       (("check", "drift"), ("stack", "demo")))]  # fmt: skip
    assert abs(success - time.time()) < 3600
    assert samples[("driftwarden_check_duration_seconds_gcount", (("check", "drift"),))] == 2
    inf = (("check", "drift"), ("le", "+Inf"))
    assert samples[("driftwarden_check_duration_seconds_bucket", inf)] == 2
    assert samples[("driftwarden_outbox_notifications", (("status", "pending"),))] == 0
    head = dashboard.fleet.cli("audit", "verify", "--json").json["head_seq"]
    assert samples[("driftwarden_audit_head_seq", ())] == head
    assert samples[("driftwarden_audit_verify_ok", ())] == 1
    assert abs(samples[("driftwarden_audit_verify_timestamp_seconds", ())] - time.time()) < 600
    labels = {name for family in families.values() for s in family.samples for name in s.labels}
    assert labels <= {"stack", "state", "check", "severity", "status", "kind", "le", "host"}, labels


def test_healthz_says_the_store_answers(dashboard: Served) -> None:
    status, _, body = dashboard.get("/healthz")
    assert status == 200
    assert json.loads(body) == {"ok": True, "store": "ok", "loop": None, "problems": []}


def test_a_token_guards_every_page_but_healthz(fleet: Fleet, tmp_path: Path) -> None:
    fleet.add("demo", checks=("drift",))
    token = "t0ken-" + "9" * 26
    token_file = tmp_path / "web-token"
    token_file.write_text(token + "\n")
    fleet.write_config(f'\n[web]\ntoken_file = "{token_file}"\n')
    assert fleet.cli("scan", "--json").code == 0
    process, url = serve(fleet, "--listen", "127.0.0.1:0")
    served = Served(fleet, fleet.stacks[0], fleet.stacks[0], url, process)
    try:
        status, headers, _ = served.get("/")
        assert status == 401
        assert "Bearer" in headers["www-authenticate"]
        assert served.get("/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert served.get("/", headers={"Authorization": f"Bearer {token}"})[0] == 200
        basic = base64.b64encode(f"prometheus:{token}".encode()).decode()
        assert served.get("/metrics", headers={"Authorization": f"Basic {basic}"})[0] == 200
        assert served.get("/healthz")[0] == 200
    finally:
        stop(process)


def test_serve_refuses_a_non_loopback_address_without_a_credential(fleet: Fleet) -> None:
    fleet.add("demo", checks=("drift",))
    result = fleet.cli("serve", "--listen", "0.0.0.0:8080", subprocess=True)
    assert result.code == 2
    assert "refusing to listen on 0.0.0.0 without a credential" in result.stderr
    bad = fleet.cli("serve", "--listen", "localhost", subprocess=True)
    assert bad.code == 2
    assert "is not HOST:PORT" in bad.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_run_serves_the_dashboard_and_its_loop_health(fleet: Fleet) -> None:
    demo = fleet.add("demo", checks=("drift",), schedule="every 1h")
    port = free_port()
    fleet.write_config(f'\n[web]\nlisten = "127.0.0.1:{port}"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("DRIFTWARDEN_STATE_DIR",
                                                           "NOTIFY_SOCKET")}  # fmt: skip
    daemon = subprocess.Popen(
        [str(DRIFTWARDEN), "--config", str(fleet.config_path), "run", "--json-logs"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    served = Served(fleet, demo, demo, f"http://127.0.0.1:{port}", daemon)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, body = served.get("/healthz")
                health = json.loads(body)
                if health["loop"] is not None:
                    break
            except OSError:
                pass
            assert daemon.poll() is None, daemon.stdout.read() if daemon.stdout else ""
            assert time.monotonic() < deadline, "the daemon's web server never answered"
            time.sleep(0.2)
        assert status == 200
        assert health["ok"] is True
        assert health["loop"]["alive"] is True
        assert served.get("/")[0] == 200
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0


def test_a_loopback_server_without_token_answers_only_loopback_names(dashboard: Served) -> None:
    # A page elsewhere that points its own name at 127.0.0.1 (DNS rebinding) is refused.
    status, headers, _ = dashboard.get("/?format=json", headers={"Host": "evil.example:80"})
    assert status == 421
    assert headers["content-security-policy"].startswith("default-src 'none'")
    port = dashboard.url.rsplit(":", 1)[1]
    # Names that merely start like a loopback address are anyone's names (issue 20).
    for host in (f"127.0.0.1.evil.example:{port}", f"127.0.0.1.nip.io:{port}",
                 f"127.evil.example:{port}", f"localhost.evil.example:{port}",
                 f"[::1].evil.example:{port}", "127.0.0.1.evil.example"):  # fmt: skip
        for path in ("/?format=json", "/audit"):
            status, _, body = dashboard.get(path, headers={"Host": host})
            assert status == 421, (host, path, body[:200])
            assert b"demo" not in body
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"127.0.0.2:{port}", "localhost",
                 f"[::1]:{port}"):  # fmt: skip
        assert dashboard.get("/healthz", headers={"Host": host})[0] == 200, host


def test_hostile_query_strings_get_a_page_not_a_crash(dashboard: Served) -> None:
    for path in ("/audit?page=99999999999999999999", "/audit?page=abc",
                 "/audit?since=0001-01-01T00:00:00%2B01:00",
                 "/audit?until=9999-12-31T23:59:59-01:00",
                 "/?sort=nope&order=sideways&state=%3Cb%3E", "/?severity=extreme"):  # fmt: skip
        status, _, body = dashboard.get(path)
        assert status == 200, (path, body[:300])
    status, _, body = dashboard.get("/?state=drifted")
    assert b'href="/?state=drifted&amp;format=json"' in body, "the JSON twin keeps the filter"
