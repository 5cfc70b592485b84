"""Notifications: what a message says (`render`, pure) and its delivery (`deliver`, apprise)."""

from driftwarden.notify.deliver import Delivery, deliver, unusable
from driftwarden.notify.render import (
    EVENT_OF_TRANSITION,
    DigestStack,
    Message,
    render_check_failing,
    render_check_recovered,
    render_digest,
    render_findings,
    render_remediation,
    render_test,
)

__all__ = [
    "EVENT_OF_TRANSITION",
    "Delivery",
    "DigestStack",
    "Message",
    "deliver",
    "render_check_failing",
    "render_check_recovered",
    "render_digest",
    "render_findings",
    "render_remediation",
    "render_test",
    "unusable",
]
