"""Delivery of one message to one target (a list of apprise URLs), with a safe error line.

A target's URLs carry its credentials (webhook tokens, SMTP passwords), so nothing here
logs or returns a URL as given: errors name URLs through `redact_url` and mask every
secret fragment of them, and a filter on apprise's logger (and urllib3's, which logs
request paths at DEBUG) does the same to records: apprise itself logs e.g. "An invalid
Slack (third) Token (<token>) was specified." for a URL it cannot load.

apprise 2.x `notify()` returns an `AppriseResult` whose per-service logs are scoped to the
call (safe with several targets delivering on threads at once), so failure reasons come
from there; `apprise.LogCapture` attaches a handler to the process-wide "apprise" logger
and would mix concurrent deliveries, so it is not used. Failures to load a URL happen
before any result exists and are captured per thread.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from driftwarden.domain.redact import EMAIL_SCHEMES, MASK, redact_url, secret_parts, split_url
from driftwarden.domain.text import shorten
from driftwarden.notify.render import Message
from driftwarden.system.files import TEXT_FILE_LIMIT, UnusableFileError, read_text_capped

if TYPE_CHECKING:  # imported where used: a process that never delivers does not load
    import apprise  # apprise (about 20 MB, 60 ms)

ERROR_CHARS = 500  # one target's error line is cut to this length
_LOGGER_NAME = "apprise"
_URL_RE = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]*")


@dataclass(frozen=True)
class Delivery:
    ok: bool
    error: str | None  # one line, credentials redacted; None when ok


# ---------------------------------------------------------------------------- redaction


def _scrub(text: str, urls: Sequence[str] = ()) -> str:
    """`text` with every URL redacted and every secret fragment of `urls` masked."""
    text = _URL_RE.sub(lambda match: redact_url(match.group(0)), text)
    for url in urls:
        for part in secret_parts(url):
            text = text.replace(part, MASK)
    return " ".join(text.split())


# Secret fragments of every URL delivered to, hidden from the loggers below whatever logs
# them and whenever (an apprise worker may log after its delivery gave up waiting). Kept
# for the life of the process: a target's URLs are few, and held in memory anyway.
_known_secrets: dict[str, None] = {}
_KNOWN_SECRETS_MAX = 4096
_secrets_lock = threading.Lock()
# apprise's own logger, and urllib3's, which logs each request's path at DEBUG.
_SCRUBBED_LOGGERS = (_LOGGER_NAME, "urllib3.connectionpool")


def _remember_secrets(urls: Sequence[str]) -> None:
    with _secrets_lock:
        for url in urls:
            for part in secret_parts(url):
                _known_secrets.pop(part, None)
                _known_secrets[part] = None
        while len(_known_secrets) > _KNOWN_SECRETS_MAX:
            del _known_secrets[next(iter(_known_secrets))]


class _RedactSecrets(logging.Filter):
    """Rewrites log records so that no URL, and no secret part of a known URL, is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error path
            return True
        with _secrets_lock:
            parts = sorted(_known_secrets, key=len, reverse=True)
        scrubbed = _URL_RE.sub(lambda match: redact_url(match.group(0)), message)
        for part in parts:
            if part in scrubbed:
                scrubbed = scrubbed.replace(part, MASK)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


_install_lock = threading.Lock()


def _install_log_filters() -> None:
    with _install_lock:
        for name in _SCRUBBED_LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(item, _RedactSecrets) for item in logger.filters):
                logger.addFilter(_RedactSecrets())


# ---------------------------------------------------------------------------- delivery


class _ThreadCapture(logging.Handler):
    """Keeps the apprise warnings and errors logged by one thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.records: list[tuple[str, str]] = []  # (level name, message)

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.records.append((record.levelname, record.getMessage()))

    @property
    def messages(self) -> list[str]:
        return [message for _, message in self.records]

    def levels(self, *names: str) -> list[str]:
        return [message for level, message in self.records if level in names]


@contextmanager
def _captured() -> Iterator[_ThreadCapture]:
    logger = logging.getLogger(_LOGGER_NAME)
    handler = _ThreadCapture()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _is_email(url: str) -> bool:
    return split_url(url.strip())[0].lower() in EMAIL_SCHEMES


_LOAD_NOISE = ("Could not load", "Unparseable", "Unsupported")


def _load_url(url: str, asset: apprise.AppriseAsset) -> apprise.NotifyBase | str:
    """The apprise service of one URL, or why the URL cannot be used (redacted)."""
    import apprise

    with _captured() as capture:
        service = apprise.Apprise.instantiate(url.strip(), asset=asset)
    if service is None:
        reasons = [m for m in capture.messages if not m.startswith(_LOAD_NOISE)]
        detail = f" ({_scrub(reasons[0], [url])})" if reasons else ""
        return f"invalid notification URL {redact_url(url)}{detail}"
    return service


def unusable(urls: Sequence[str], config_file: str | PathLike[str] | None = None) -> str | None:
    """Why a target's URLs (or its apprise config file) cannot be used, redacted; None
    when apprise loads them all. Offline: nothing is sent."""
    import apprise

    asset = apprise.AppriseAsset()
    _remember_secrets(urls)
    for url in urls:
        loaded = _load_url(url, asset)
        if isinstance(loaded, str):
            return loaded
    if config_file is not None:
        services = _load_config(config_file, asset)
        if isinstance(services, str):
            return services
    return None


def _load_config(
    path: str | PathLike[str], asset: apprise.AppriseAsset
) -> list[tuple[str, apprise.NotifyBase]] | str:
    """The services of an apprise config file (TEXT or YAML), or why it cannot be used.

    Every service of the file is notified, whatever its tags. A file with an entry that
    apprise cannot load is refused as a whole, like a target with an invalid URL.
    """
    import apprise

    try:
        content = read_text_capped(Path(path), TEXT_FILE_LIMIT)
    except UnusableFileError as exc:
        return f"notification config {path} {exc}"
    _remember_secrets(_URL_RE.findall(content))  # before apprise logs anything of them
    config = apprise.AppriseConfig(asset=asset, cache=False)
    with _captured() as capture:
        config.add(str(path))
        services = config.services()
    failures = [m for m in capture.levels("ERROR") if m.startswith(_LOAD_NOISE)]
    if failures or not services:
        reasons = [m for m in capture.messages if not m.startswith(_LOAD_NOISE)]
        what = "an invalid notification URL" if failures else "no notification URL"
        detail = f" ({_scrub(reasons[0], _URL_RE.findall(content))})" if reasons else ""
        return f"notification config {path}: {what}{detail}"
    # The full URL, secrets included: only to know its scheme and what to redact.
    loaded = [(str(service.url()), service) for service in services]  # type: ignore[no-untyped-call]
    _remember_secrets([url for url, _ in loaded])
    return loaded


def _send(
    service: apprise.NotifyBase,
    url: str,
    message: Message,
    asset: apprise.AppriseAsset,
    timeout: float,
) -> str | None:
    """Notify one service; None when it worked, else a redacted reason."""
    import apprise

    # The socket timeouts bound the work itself; the service timeout only stops waiting.
    service.socket_connect_timeout = min(float(service.socket_connect_timeout), timeout)
    service.socket_read_timeout = min(float(service.socket_read_timeout), timeout)
    notifier = apprise.Apprise(asset=asset)
    notifier.add(service)
    email = _is_email(url)
    try:
        result = notifier.notify(
            body=message.text if email else message.markdown,
            title=message.title,
            body_format=apprise.NotifyFormat.TEXT if email else apprise.NotifyFormat.MARKDOWN,
            timeout=timeout,
        )
    except Exception as exc:  # apprise reports failures in its result; this is a bug there
        return f"{redact_url(url)}: {_scrub(f'{type(exc).__name__}: {exc}', [url])}"
    with result:
        if result:
            return None
        reasons: list[str] = []
        for entry in result.logs():
            if entry.level in ("WARNING", "ERROR", "CRITICAL") and entry.message not in reasons:
                reasons.append(entry.message)
        detail = " / ".join(reasons) or f"delivery {result.status.name.lower()}"
    return f"{redact_url(url)}: {_scrub(detail, [url])}"


def deliver(
    urls: Sequence[str],
    message: Message,
    *,
    timeout: float = 15.0,
    config_files: Sequence[str | PathLike[str]] = (),
) -> Delivery:
    """Send `message` to every URL of one target: ok only when every URL accepted it.

    `config_files` are apprise config files (TEXT or YAML) whose services are part of the
    target too. Email URLs (mailto, mailtos) get the plain-text body, all others the
    Markdown one; each URL is notified on its own. Nothing is sent when any URL or config
    file is invalid. `timeout` bounds each URL's delivery (connect, read, and apprise's
    wait for it).
    """
    import apprise

    _install_log_filters()
    urls = [url for url in urls if url.strip()]
    _remember_secrets(urls)
    asset = apprise.AppriseAsset(service_timeout=timeout)
    services: list[tuple[str, apprise.NotifyBase]] = []
    for url in urls:
        service = _load_url(url, asset)
        if isinstance(service, str):
            return Delivery(False, service)
        services.append((url, service))
    for path in config_files:
        loaded = _load_config(path, asset)
        if isinstance(loaded, str):
            return Delivery(False, loaded)
        services.extend(loaded)
    if not services:
        return Delivery(False, "no notification URL configured")
    errors = [
        error
        for url, service in services
        if (error := _send(service, url, message, asset, timeout)) is not None
    ]
    if not errors:
        return Delivery(True, None)
    return Delivery(False, shorten("; ".join(errors), ERROR_CHARS))
