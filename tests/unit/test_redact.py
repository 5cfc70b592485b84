"""One rule for every URL driftwarden shows: notification targets and state backends."""

from __future__ import annotations

import pytest

from driftwarden.domain.redact import redact_url


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("slack://T000/B000/XXXX", "slack://***"),
        ("json://127.0.0.1:8080/hook?token=abc", "json://127.0.0.1:8080/***"),
        ("mailto://user:pass@host", "mailto://***@host"),
        ("mailtos://user:pass@smtp.example.com:587?to=a@example.com", "mailtos://***@smtp.example.com:587/***"),
        ("https://hooks.example.com/services/T0/B0/XYZ", "https://hooks.example.com/***"),
        ("workflows://flow.example.com:443/workflow-id/signature", "workflows://flow.example.com:443/***"),
        ("tgram://123456789:AAbbCC/987", "tgram://***"),  # a bot token, not host:port
        ("pover://userkey@apptoken", "pover://***"),
        ("json://localhost:8000", "json://localhost:8000"),
        ("json://[::1]:8080/x", "json://[::1]:8080/***"),
        ("not a url", "***"),
        # State backends. The default is a local path: no credential in it, and a user
        # needs to see which it is.
        ("file:///var/lib/driftwarden/backend", "file:///var/lib/driftwarden/backend"),
        ("file://~/.pulumi-state", "file://~/.pulumi-state"),
        ("file:///srv/state?no_tmp_dir=true", "file:///srv/state?***"),
        ("https://user:hunter2@127.0.0.1:9", "https://***@127.0.0.1:9"),
        ("https://api.pulumi.com", "https://api.pulumi.com"),
        ("postgres://pulumi:pw@db.example.com:5432/state", "postgres://***@db.example.com:5432/***"),
        ("s3://my-bucket/prefix?region=eu-west-1&profile=ops", "s3://***"),
        ("azblob://container?storage_account=acct", "azblob://***"),
    ],
)  # fmt: skip
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
