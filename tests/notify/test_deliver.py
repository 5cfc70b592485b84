"""Delivery through apprise to a real local SMTP server and a real local HTTP endpoint."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from driftwarden.domain.redact import redact_url
from driftwarden.drift import extract_changes
from driftwarden.notify.deliver import Delivery, deliver
from driftwarden.notify.render import Message, render_findings
from tests.conftest import load_events
from tests.notify.conftest import HttpEndpoint, SmtpServer
from tests.notify.test_render import FIXTURE_TOKENS, transitions_of

SECRET = "s3cr3t-hook-token"


@pytest.fixture
def message() -> Message:
    rendered = render_findings(
        "demo", transitions_of(extract_changes(load_events("refresh-drift")))
    )
    assert rendered is not None
    return rendered


def test_email_gets_the_plain_text_body_with_the_title_as_subject(
    smtp_server: SmtpServer, message: Message
) -> None:
    delivery = deliver([smtp_server.url(to="ops@example.com")], message)
    assert delivery == Delivery(True, None)

    [received] = smtp_server.wait_for(1)
    assert received["Subject"] == "[driftwarden] demo: 4 resources drifted"
    assert received["To"].addresses[0].addr_spec == "ops@example.com"
    assert smtp_server.envelopes[0].rcpt_tos == ("ops@example.com",)
    assert received.get_content_type() == "text/plain"
    body = received.get_content()
    assert body.replace("\r\n", "\n").strip() == message.text.strip()
    assert 'content: "hello\\n" → "HACKED\\n"' in body
    assert "**" not in body
    for token in FIXTURE_TOKENS:
        assert token not in received.as_string()


def test_json_gets_the_markdown_body_as_a_json_document(
    http_endpoint: HttpEndpoint, message: Message
) -> None:
    delivery = deliver([http_endpoint.url("/hooks/drift")], message)
    assert delivery.ok, delivery.error

    [request] = http_endpoint.requests
    assert request.method == "POST"
    assert request.path == "/hooks/drift"
    assert request.headers["Content-Type"] == "application/json"
    payload = request.json()
    assert payload["title"] == message.title
    assert payload["message"] == message.markdown
    assert payload["type"] == "info"
    assert {"version", "attachments"} <= set(payload)


def test_one_target_with_mixed_schemes_gets_the_right_body_on_each(
    smtp_server: SmtpServer, http_endpoint: HttpEndpoint, message: Message
) -> None:
    delivery = deliver([http_endpoint.url(), smtp_server.url()], message)
    assert delivery.ok, delivery.error
    assert http_endpoint.requests[0].json()["message"] == message.markdown
    [received] = smtp_server.wait_for(1)
    assert "**" not in received.get_content()


def test_a_500_is_a_failed_delivery_without_the_token(
    http_endpoint: HttpEndpoint, message: Message, caplog: pytest.LogCaptureFixture
) -> None:
    http_endpoint.fail_with(500)
    url = http_endpoint.url(f"/hook/{SECRET}") + f"?token={SECRET}"
    with caplog.at_level(logging.DEBUG):
        delivery = deliver([url], message)
    assert not delivery.ok
    assert delivery.error is not None
    assert "500" in delivery.error
    assert f"json://127.0.0.1:{http_endpoint.port}/***" in delivery.error
    assert SECRET not in delivery.error
    assert "\n" not in delivery.error
    assert SECRET not in caplog.text
    assert len(http_endpoint.requests) == 1  # it got there, and was refused


def test_a_closed_port_is_a_failed_delivery_without_the_token(
    closed_port: int, message: Message, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"json://user:{SECRET}@127.0.0.1:{closed_port}/{SECRET}"
    with caplog.at_level(logging.DEBUG):
        delivery = deliver([url], message)
    assert not delivery.ok
    assert delivery.error is not None
    assert delivery.error.startswith(f"json://***@127.0.0.1:{closed_port}/***: ")
    assert "connection" in delivery.error.lower()
    assert SECRET not in delivery.error
    assert SECRET not in caplog.text


def test_a_stopped_smtp_server_is_a_failed_delivery(
    smtp_server: SmtpServer, http_endpoint: HttpEndpoint, message: Message
) -> None:
    url = smtp_server.url()
    http_endpoint.stop()
    delivery = deliver([url, http_endpoint.url()], message)
    assert not delivery.ok
    assert delivery.error is not None
    assert f"json://127.0.0.1:{http_endpoint.port}/***" in delivery.error
    assert len(smtp_server.messages) == 1  # the other URL of the target still got it


def test_a_hanging_endpoint_times_out(http_endpoint: HttpEndpoint, message: Message) -> None:
    http_endpoint.delay(5)
    started = time.monotonic()
    delivery = deliver([http_endpoint.url()], message, timeout=1.0)
    assert time.monotonic() - started < 4
    assert not delivery.ok
    assert delivery.error is not None


@pytest.mark.parametrize(
    "url",
    [
        f"slack://T000/B000/{SECRET}",  # cannot be loaded: a token is missing
        f"nosuchscheme://user:{SECRET}@example.com/{SECRET}",
        "json://",
    ],
)
def test_an_invalid_url_sends_nothing_and_names_no_secret(
    url: str, http_endpoint: HttpEndpoint, message: Message, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        delivery = deliver([http_endpoint.url(), url], message)
    assert not delivery.ok
    assert delivery.error is not None
    assert delivery.error.startswith(f"invalid notification URL {redact_url(url)}")
    assert SECRET not in delivery.error
    assert SECRET not in caplog.text
    assert http_endpoint.requests == []  # nothing sent when part of the target is broken


@pytest.mark.parametrize("form", ["text", "yaml"])
def test_an_apprise_config_file_adds_its_services(
    form: str,
    smtp_server: SmtpServer,
    http_endpoint: HttpEndpoint,
    message: Message,
    tmp_path: Path,
) -> None:
    json_url, mail_url = http_endpoint.url(f"/{SECRET}"), smtp_server.url()
    if form == "text":
        content = f"chat={json_url}\nmail={mail_url}\n"
    else:
        content = f"urls:\n  - {json_url}:\n      tag: chat\n  - {mail_url}\n"
    config = tmp_path / f"apprise.{'yml' if form == 'yaml' else 'txt'}"
    config.write_text(content)

    delivery = deliver([], message, config_files=[config])
    assert delivery.ok, delivery.error
    assert http_endpoint.requests[0].json()["message"] == message.markdown  # tags don't matter
    assert smtp_server.wait_for(1)[0].get_content().replace("\r\n", "\n").strip() == (
        message.text.strip()
    )


def test_a_config_file_with_a_broken_entry_sends_nothing(
    http_endpoint: HttpEndpoint, message: Message, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "apprise.txt"
    config.write_text(f"{http_endpoint.url()}\nslack://T000/B000/{SECRET}\n")
    with caplog.at_level(logging.DEBUG):
        delivery = deliver([], message, config_files=[config])
    assert not delivery.ok
    assert delivery.error is not None
    assert delivery.error.startswith(f"notification config {config}: an invalid notification URL")
    assert SECRET not in delivery.error
    assert SECRET not in caplog.text
    assert http_endpoint.requests == []

    missing = deliver([], message, config_files=[tmp_path / "missing.txt"])
    assert missing.error is not None
    assert missing.error == f"notification config {tmp_path / 'missing.txt'} does not exist"


def test_no_url_is_a_failed_delivery(message: Message) -> None:
    assert deliver([], message) == Delivery(False, "no notification URL configured")
