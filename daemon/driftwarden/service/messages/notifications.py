"""Which messages a check causes, and their delivery from the outbox.

Messages are queued in the same store transaction as the transitions that cause them
(`queue_for_check`), then delivered by `deliver_due`: each target on its own thread, so
one slow or broken target never delays the others.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from driftwarden.config import Config, StackConfig, TargetConfig
from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import (
    FindingTransition,
    NotificationEvent,
    NotificationStatus,
    OperationStatus,
    failure_streak,
)
from driftwarden.notify.deliver import Delivery, deliver
from driftwarden.notify.render import (
    EVENT_OF_TRANSITION,
    Message,
    render_check_failing,
    render_check_recovered,
    render_findings,
)
from driftwarden.service.logs import logger
from driftwarden.store import Session
from driftwarden.store.db import Store
from driftwarden.store.models import Notification
from driftwarden.store.outbox import claim, due, enqueue, record_attempt
from driftwarden.store.queries import recent_statuses
from driftwarden.system.credentials import ENV_CREDENTIALS, credentials_directory
from driftwarden.system.failpoints import crash_point
from driftwarden.system.files import UnusableFileError, read_text_capped


def target_urls(
    target: TargetConfig, *, credential: bool = True, environment: bool = True
) -> list[str]:
    """The target's apprise URLs, read now from wherever they are kept (`url_credential`
    only with `credential`: outside the service it cannot be read; neither it nor
    `url_env` without `environment`)."""
    urls = list(target.urls)
    credential = credential and environment
    if target.url_env and environment:
        value = os.environ.get(target.url_env, "").strip()
        if not value:
            raise DriftwardenError(
                f"target {target.name!r}: environment variable {target.url_env} is not set",
                hint="set it in the service environment, or use url_file/url_credential",
            )
        urls.append(value)
    for path in _secret_files(target, credential=credential):
        try:
            value = read_text_capped(path).strip()
        except UnusableFileError as exc:
            raise DriftwardenError(
                f"target {target.name!r}: {path} {exc}",
                hint="check the file (or the unit's LoadCredential=)",
            ) from None
        if not value:
            raise DriftwardenError(f"target {target.name!r}: {path} is empty")
        urls.extend(line.strip() for line in value.splitlines() if line.strip())
    return urls


def _secret_files(target: TargetConfig, *, credential: bool) -> list[Path]:
    files = [target.url_file] if target.url_file else []
    if target.url_credential and credential:
        directory = credentials_directory()
        if directory is None:
            raise DriftwardenError(
                f"target {target.name!r}: url_credential needs ${ENV_CREDENTIALS}",
                hint="run under systemd with LoadCredential=, or use url_file",
            )
        files.append(directory / target.url_credential)
    return files


def target_config_files(target: TargetConfig) -> list[str]:
    return [str(target.config_file)] if target.config_file else []


def queue_for_check(
    session: Session,
    config: Config,
    stack: StackConfig,
    *,
    check: str,
    operation_id: str,
    status: OperationStatus,
    transitions: Sequence[FindingTransition],
    error: str | None,
) -> list[Notification]:
    """Queue what this finished check means for each of the stack's targets."""
    targets = config.targets_of(stack)
    queued = []
    if transitions:
        for target in targets:
            wanted = [
                t for t in transitions
                if target.wants(EVENT_OF_TRANSITION[t.kind]) and target.accepts(t.severity)
            ]  # fmt: skip
            message = render_findings(stack.name, wanted)
            if message is not None:
                queued += queue_message(session, message, [target], cause=operation_id,
                                        stack=stack.name, operation_id=operation_id)  # fmt: skip
    threshold = config.notifications.check_failing_after
    statuses = recent_statuses(session, stack.name, check, limit=threshold + 50)
    streak = failure_streak(statuses[1:] if statuses else [])
    failing_message = None
    if status.is_failure and streak + 1 == threshold:
        failing_message = render_check_failing(stack.name, check, error or "", threshold)
    elif status is OperationStatus.SUCCEEDED and streak >= threshold:
        failing_message = render_check_recovered(stack.name, check, streak)
    if failing_message is not None:
        queued += queue_message(session, failing_message, targets, cause=operation_id,
                                stack=stack.name, operation_id=operation_id)  # fmt: skip
    return queued


def queue_message(
    session: Session,
    message: Message,
    targets: Sequence[TargetConfig],
    *,
    cause: str,
    stack: str | None = None,
    operation_id: str | None = None,
) -> list[Notification]:
    """The one way a message is queued, in the caller's transaction (with the record it
    announces: late, never lost): once per `cause`, target and event (the idempotency
    key), to each of `targets` that wants the message's event."""
    queued = []
    for target in targets:
        if not target.wants(message.event):
            continue
        row = enqueue(session, key=f"{cause}:{target.name}:{message.event}", target=target.name,
                      event=message.event, title=message.title, markdown=message.markdown,
                      text=message.text, stack=stack, operation_id=operation_id)  # fmt: skip
        if row is not None:
            queued.append(row)
    return queued


_HEADER_SCHEMES = ("json", "jsons", "form", "forms", "xml", "xmls")


def with_idempotency_key(url: str, key: str) -> str:
    """Webhook targets get the key as a header (apprise's `+Header=value` parameter), so a
    receiver can drop the duplicate that a crash between sending and recording can cause."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in _HEADER_SCHEMES:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({'+X-Driftwarden-Idempotency-Key': key})}"


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # target -> last error


def deliver_due(store: Store, config: Config, actor: str, timeout: float = 15.0) -> DeliveryReport:
    """One delivery pass over the outbox: every due message, targets in parallel."""
    with store.read() as session:
        pending = list(due(session))
    by_target: dict[str, list[Notification]] = defaultdict(list)
    for notification in pending:
        by_target[notification.target].append(notification)
    report = DeliveryReport()
    if not by_target:
        return report
    with ThreadPoolExecutor(
        max_workers=min(8, len(by_target)), thread_name_prefix="notify"
    ) as pool:
        for target_name, outcome in zip(
            by_target,
            pool.map(
                lambda name: _deliver_target(store, config, actor, name, by_target[name], timeout),
                by_target,
            ),
            strict=True,
        ):
            report.sent += outcome.sent
            report.retrying += outcome.retrying
            report.failed += outcome.failed
            if outcome.errors:
                report.errors[target_name] = outcome.errors[target_name]
    return report


def _deliver_target(
    store: Store,
    config: Config,
    actor: str,
    name: str,
    notifications: list[Notification],
    timeout: float,
) -> DeliveryReport:
    report = DeliveryReport()
    target = config.target(name)
    # Longer than one attempt can take (apprise's own timeouts included).
    lease = timedelta(seconds=max(60.0, 4 * timeout))
    for notification in notifications:
        with store.write() as session:
            if not claim(session, notification, lease=lease):
                continue  # another sender is delivering it, or already has
        if target is None:
            delivery = Delivery(False, f"target {name!r} is no longer configured")
        else:
            try:
                message = Message(NotificationEvent(notification.event), notification.title,
                                  notification.markdown, notification.text)  # fmt: skip
                urls = [with_idempotency_key(url, notification.idempotency_key)
                        for url in target_urls(target)]  # fmt: skip
                crash_point("delivery.before-send")
                delivery = deliver(
                    urls, message, timeout=timeout, config_files=target_config_files(target)
                )
                crash_point("delivery.after-send")
            except DriftwardenError as exc:
                delivery = Delivery(False, str(exc))
        with store.write() as session:
            row = record_attempt(
                session, store.audit, notification.id, ok=delivery.ok, error=delivery.error,
                max_attempts=config.notifications.max_attempts, actor=actor,
            )  # fmt: skip
        if delivery.ok:
            report.sent += 1
            continue
        report.errors[name] = delivery.error or "delivery failed"
        if row.status == NotificationStatus.FAILED:
            report.failed += 1
        else:
            report.retrying += 1
        logger.warning(
            "notification not delivered",
            extra={"target": name, "notification_id": row.id, "attempts": row.attempts,
                   "status": row.status, "error": delivery.error},
        )  # fmt: skip
        break  # this target is down: its other messages wait for the next pass
    return report
