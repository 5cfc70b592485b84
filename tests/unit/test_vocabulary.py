"""The domain vocabulary: enums whose members are their stored values, one spelling each."""

from __future__ import annotations

import json
import typing

from driftwarden.config import NOTIFY_EVENTS, SeverityName
from driftwarden.domain.model import (
    AuditAction,
    CheckStatus,
    DiffKind,
    NotificationEvent,
    OperationOutcome,
    Severity,
)


def test_members_are_their_values_in_json() -> None:
    values = [AuditAction.FINDING_OPENED, NotificationEvent.DRIFT_NEW, Severity.HIGH]
    assert json.dumps(values) == '["finding.opened", "drift.new", "high"]'
    assert f"{OperationOutcome.IN_SYNC}" == "in_sync"


def test_the_config_accepts_exactly_the_severities() -> None:
    assert typing.get_args(SeverityName) == tuple(Severity)


def test_targets_choose_among_every_event_but_the_test_and_the_digest() -> None:
    assert set(NotificationEvent) - set(NOTIFY_EVENTS) == {
        NotificationEvent.TEST,
        NotificationEvent.DRIFT_DIGEST,
    }


def test_a_check_records_its_verdict_or_error() -> None:
    assert [status.outcome for status in CheckStatus] == [
        OperationOutcome.IN_SYNC,
        OperationOutcome.DRIFTED,
        OperationOutcome.CHANGES_PENDING,
        OperationOutcome.ERROR,
    ]


def test_a_replacing_difference() -> None:
    assert DiffKind.ADD.replacing is DiffKind.ADD_REPLACE
    assert DiffKind.UPDATE.replacing is DiffKind.UPDATE_REPLACE
    assert DiffKind.DELETE_REPLACE.replacing is DiffKind.DELETE_REPLACE


def test_finding_transitions_are_audited_as_finding_actions() -> None:
    assert AuditAction.of_transition("opened") is AuditAction.FINDING_OPENED
    assert AuditAction.of_transition("resolved") is AuditAction.FINDING_RESOLVED
