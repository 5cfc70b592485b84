"""Notifications end to end: a real engine drifts a local-demo stack, driftwarden scans it,
and a real SMTP server and a real HTTP endpoint on loopback read what arrived."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

import pytest

from tests.cli import DRIFTWARDEN
from tests.integration.conftest import SECRET_TOKEN, DemoStack, Fleet
from tests.notify.conftest import HttpEndpoint, SmtpServer

pytestmark = pytest.mark.engine


def configure(
    fleet: Fleet, targets: dict[str, str], *, max_attempts: int = 8, digest: str | None = None
) -> None:
    extra = f'digest = "{digest}"\n' if digest else ""
    entries = "".join(
        f'[[targets]]\nname = "{name}"\nurls = ["{url}"]\n{extra}' for name, url in targets.items()
    )
    fleet.write_config(
        f"\n[notifications]\ndefault_targets = {json.dumps(list(targets))}\n"
        f"max_attempts = {max_attempts}\n\n{entries}"
    )


def outbox(fleet: Fleet) -> list[dict[str, Any]]:
    result = fleet.cli("notify", "list", "--json")
    assert result.code == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)["notifications"]
    return rows


def test_drift_reaches_email_and_webhook_with_the_properties_and_no_secret(
    fleet: Fleet, demo: DemoStack, smtp_server: SmtpServer, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, {"mail": smtp_server.url(), "hook": http_endpoint.url()})
    (demo.files / "motd.txt").write_text("HACKED\n")
    new_token = "rotated-by-hand-77aa"
    (demo.files / "secrets" / "api-token").write_text(new_token)
    assert fleet.scan("--check", "drift").code == 3

    (email,) = smtp_server.wait_for(1)
    assert email["Subject"] == "[driftwarden] demo: 2 resources drifted"
    body = email.get_content()
    for expected in ("motd", "content", '"hello\\n"', '"HACKED\\n"', "api-token", "[secret]",
                     "driftwarden drift show demo"):  # fmt: skip
        assert expected in body, body

    (request,) = http_endpoint.requests
    posted = request.json()
    assert posted["title"] == "[driftwarden] demo: 2 resources drifted"
    assert "motd" in posted["message"]
    assert "HACKED" in posted["message"]
    (sent,) = [row for row in outbox(fleet) if row["target"] == "hook"]
    assert request.headers["X-Driftwarden-Idempotency-Key"] == sent["idempotency_key"]

    everything = body + request.body.decode() + json.dumps(outbox(fleet))
    assert SECRET_TOKEN not in everything
    assert new_token not in everything


def test_one_message_per_transition_not_per_scan(
    fleet: Fleet, demo: DemoStack, smtp_server: SmtpServer, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, {"mail": smtp_server.url(), "hook": http_endpoint.url()})
    motd = demo.files / "motd.txt"
    motd.write_text("HACKED\n")
    for _ in range(5):
        assert fleet.scan("--check", "drift").code == 3
    assert len(smtp_server.wait_for(1)) == 1
    assert len(http_endpoint.requests) == 1

    motd.write_text("HACKED AGAIN\n")
    assert fleet.scan("--check", "drift").code == 3
    changed = smtp_server.wait_for(2)[-1]
    assert changed["Subject"] == "[driftwarden] demo: drift changed on 1 resource"
    assert "HACKED AGAIN" in changed.get_content()

    motd.write_text("hello\n")
    assert fleet.scan("--check", "drift").code == 0
    resolved = smtp_server.wait_for(3)[-1]
    assert resolved["Subject"] == "[driftwarden] demo: drift resolved on 1 resource"
    time.sleep(1)
    assert len(smtp_server.messages) == 3
    assert [json.loads(r.body)["title"] for r in http_endpoint.requests] == [
        "[driftwarden] demo: 1 resource drifted",
        "[driftwarden] demo: drift changed on 1 resource",
        "[driftwarden] demo: drift resolved on 1 resource",
    ]
    assert {row["event"] for row in outbox(fleet)} == {
        "drift.new", "drift.changed", "drift.resolved",
    }  # fmt: skip


def test_a_down_endpoint_gets_its_messages_once_it_is_back(
    fleet: Fleet, demo: DemoStack, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, {"hook": http_endpoint.url()})
    http_endpoint.fail_with(500)
    (demo.files / "motd.txt").write_text("HACKED\n")
    assert fleet.scan("--check", "drift").code == 3
    (pending,) = outbox(fleet)
    assert pending["status"] == "pending"
    assert pending["attempts"] == 1
    assert pending["last_error"]

    http_endpoint.succeed()
    failed_requests = len(http_endpoint.requests)
    time.sleep(2.5)  # the first backoff
    send = fleet.cli("notify", "send", "--json")
    assert json.loads(send.stdout)["sent"] == 1
    assert len(http_endpoint.requests) == failed_requests + 1
    (sent,) = outbox(fleet)
    assert sent["status"] == "sent"
    # Exactly once: nothing more goes out, however often the outbox is flushed.
    fleet.cli("notify", "send")
    assert fleet.scan("--check", "drift").code == 3
    assert len(http_endpoint.requests) == failed_requests + 1


def test_a_broken_target_fails_alone(
    fleet: Fleet,
    demo: DemoStack,
    smtp_server: SmtpServer,
    http_endpoint: HttpEndpoint,
    closed_port: int,
) -> None:
    broken = f"json://127.0.0.1:{closed_port}/hook?token=s3cr3t-token"
    configure(fleet, {"broken": broken, "mail": smtp_server.url()}, max_attempts=2)
    (demo.files / "motd.txt").write_text("HACKED\n")
    assert fleet.scan("--check", "drift").code == 3
    assert len(smtp_server.wait_for(1)) == 1  # delivered at once, whatever "broken" does
    time.sleep(2.5)
    fleet.cli("notify", "send")
    rows = {row["target"]: row for row in outbox(fleet)}
    assert rows["mail"]["status"] == "sent"
    assert rows["broken"]["status"] == "failed"
    assert rows["broken"]["attempts"] == 2
    assert rows["broken"]["last_error"]
    assert "s3cr3t-token" not in json.dumps(rows)
    audit = fleet.cli("audit", "export")
    events = [json.loads(line) for line in audit.stdout.splitlines()]
    failed = [e for e in events if e["activity_name"] == "notification.failed"]
    assert len(failed) == 1
    assert "s3cr3t-token" not in audit.stdout


def test_a_scan_killed_before_delivery_delivers_after_restart(
    fleet: Fleet, demo: DemoStack, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, {"hook": http_endpoint.url()})
    http_endpoint.delay(60)  # the delivery hangs: the scan is killed inside it
    (demo.files / "motd.txt").write_text("HACKED\n")
    process = subprocess.Popen(
        [str(DRIFTWARDEN), "--config", str(fleet.config_path), "scan", "--check", "drift"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={k: v for k, v in os.environ.items() if k != "DRIFTWARDEN_STATE_DIR"},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not http_endpoint.requests and time.monotonic() < deadline:
        time.sleep(0.1)
    assert http_endpoint.requests, "the scan never reached the delivery"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    (queued,) = outbox(fleet)
    assert queued["status"] == "pending"  # the transition and its message survived

    http_endpoint.delay(0)
    send = fleet.cli("notify", "send", "--json")
    assert json.loads(send.stdout)["sent"] == 1
    (delivered,) = outbox(fleet)
    assert delivered["status"] == "sent"
    keys = {r.headers["X-Driftwarden-Idempotency-Key"] for r in http_endpoint.requests}
    assert keys == {delivered["idempotency_key"]}  # the receiver can drop the duplicate


def test_a_digest_lists_what_is_still_open_and_stays_quiet_once_fixed(
    fleet: Fleet, demo: DemoStack, smtp_server: SmtpServer, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, {"mail": smtp_server.url(), "hook": http_endpoint.url()},
              digest="daily at 09:00")  # fmt: skip
    (demo.files / "motd.txt").write_text("HACKED\n")
    new_token = "rotated-by-hand-88bb"
    (demo.files / "secrets" / "api-token").write_text(new_token)
    assert fleet.scan("--check", "drift").code == 3
    smtp_server.wait_for(1)  # the drift.new message

    result = fleet.cli("notify", "digest", "--json")
    assert result.code == 0, result.stderr
    digests = {d["target"]: d for d in json.loads(result.stdout)["digests"]}
    assert {name: (d["status"], d["stacks"], d["findings"], d["error"])
            for name, d in digests.items()} == {
        "mail": ("queued", 1, 2, None), "hook": ("queued", 1, 2, None),
    }  # fmt: skip
    title = "[driftwarden] digest: 1 stack with open findings (2 resources)"
    email = smtp_server.wait_for(2)[-1]
    assert email["Subject"] == title
    body = email.get_content()
    for expected in ("demo — 2 resources, 2 findings, open since", "motd (",
                     'content: "hello\\n" → "HACKED\\n"', "api-token (",
                     "content: [secret] → [secret]", "driftwarden drift show demo"):  # fmt: skip
        assert expected in body, body
    posted = http_endpoint.requests[-1].json()
    assert posted["title"] == title
    assert "HACKED" in posted["message"]
    everything = body + http_endpoint.requests[-1].body.decode() + json.dumps(outbox(fleet))
    assert SECRET_TOKEN not in everything
    assert new_token not in everything
    digest_rows = [row for row in outbox(fleet) if row["event"] == "drift.digest"]
    assert sorted((row["target"], row["status"]) for row in digest_rows) == [
        ("hook", "sent"), ("mail", "sent"),
    ]  # fmt: skip

    (demo.files / "motd.txt").write_text("hello\n")
    (demo.files / "secrets" / "api-token").write_text(SECRET_TOKEN)
    assert fleet.scan("--check", "drift").code == 0
    smtp_server.wait_for(3)  # drift.resolved
    quiet = fleet.cli("notify", "digest", "--json")
    assert quiet.code == 0, quiet.stderr
    assert {d["status"] for d in json.loads(quiet.stdout)["digests"]} == {"nothing_open"}
    time.sleep(1)
    assert len(smtp_server.messages) == 3

    unknown = fleet.cli("notify", "digest", "--target", "pager")
    assert unknown.code == 2
    assert unknown.stderr == "error: no target named 'pager' — known targets: mail, hook\n"


def test_digest_without_a_schedule_or_a_target_says_how_to_set_one(
    fleet: Fleet, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, {"hook": http_endpoint.url()})
    result = fleet.cli("notify", "digest")
    assert result.code == 2
    assert result.stderr.startswith(f"error: {fleet.config_path}: no target has a digest schedule")
    assert 'digest = "daily at 09:00"' in result.stderr
    assert http_endpoint.requests == []


def test_concurrent_senders_deliver_each_message_once(
    fleet: Fleet, demo: DemoStack, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, {"hook": http_endpoint.url()})
    http_endpoint.fail_with(500)  # the scan's own delivery fails: the message stays due
    (demo.files / "motd.txt").write_text("HACKED\n")
    assert fleet.scan("--check", "drift").code == 3
    assert len(http_endpoint.requests) == 1
    http_endpoint.succeed()
    http_endpoint.delay(3)  # each sender is still in its attempt when the other looks
    time.sleep(2.5)  # past the first retry's backoff

    send = [str(DRIFTWARDEN), "--config", str(fleet.config_path), "notify", "send", "--json"]
    env = {k: v for k, v in os.environ.items() if k != "DRIFTWARDEN_STATE_DIR"}
    senders = [subprocess.Popen(send, stdout=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    reports = [json.loads(sender.communicate(timeout=120)[0]) for sender in senders]
    assert sorted(report["sent"] for report in reports) == [0, 0, 1]
    assert len(http_endpoint.requests) == 2  # the failed attempt, then exactly one delivery
    (row,) = outbox(fleet)
    assert (row["status"], row["attempts"]) == ("sent", 2)


def test_notify_test_reaches_each_target_and_fails_on_a_dead_one(
    fleet: Fleet, http_endpoint: HttpEndpoint
) -> None:
    configure(fleet, {"hook": http_endpoint.url(), "dead": "json://127.0.0.1:9/"})
    result = fleet.cli("notify", "test", "--json")
    assert result.code == 1, "one target could not be reached"
    by_target = {r["target"]: r for r in json.loads(result.stdout)["results"]}
    assert by_target["hook"]["ok"] is True
    assert by_target["dead"]["ok"] is False
    assert by_target["dead"]["error"]
    (request,) = http_endpoint.requests
    assert "test message from driftwarden" in request.json()["message"]
    events = [json.loads(line) for line in fleet.cli("audit", "export").stdout.splitlines()]
    tests = {e["unmapped"]["details"]["target"]: e["status_detail"]
             for e in events if e["activity_name"] == "notification.test"}  # fmt: skip
    assert tests == {"hook": "sent", "dead": "failed"}, "each attempt is audited"
