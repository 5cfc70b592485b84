"""The one rule for a stack's state, which `status` and the daemon share."""

from __future__ import annotations

import pytest

from driftwarden.domain.model import StackState, stack_state


@pytest.mark.parametrize(
    ("latest", "expected"),
    [
        ([], StackState.NEVER_SCANNED),
        ([("succeeded", "in_sync"), ("succeeded", "in_sync")], StackState.IN_SYNC),
        ([("succeeded", "changes_pending"), ("succeeded", "drifted")], StackState.DRIFTED),
        ([("succeeded", "in_sync"), ("succeeded", "changes_pending")], StackState.CHANGES_PENDING),
        ([("failed", None), ("succeeded", "drifted")], StackState.FAILED),
        ([("timed_out", None)], StackState.FAILED),
        # A check in flight is `running`, not `failed` (the daemon used to say failed).
        ([("running", None), ("failed", None)], StackState.RUNNING),
        # A stop is nobody's fault: the other check's verdict stands.
        ([("cancelled", None), ("succeeded", "drifted")], StackState.DRIFTED),
        ([("interrupted", None), ("succeeded", "in_sync")], StackState.IN_SYNC),
        ([("cancelled", None)], StackState.STOPPED),
    ],
)
def test_stack_state(latest: list[tuple[str, str | None]], expected: StackState) -> None:
    assert stack_state(latest) is expected


def test_an_unknown_status_is_an_error_not_a_state() -> None:
    with pytest.raises(ValueError, match="'done'"):
        stack_state([("done", None)])
