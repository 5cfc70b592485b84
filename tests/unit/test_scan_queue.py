"""The daemon's queue, backoff and skip streaks, without a daemon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftwarden.domain.model import Check, Trigger, failure_streak
from driftwarden.hosts.bookkeeping import Retries, ScanQueue, SkipStreaks
from driftwarden.hosts.lifecycle import retry_delay

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def drain(queue: ScanQueue) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    while (item := queue.pop()) is not None:
        out.append((item.name, item.trigger))
    return out


def test_requests_go_first_then_arrival_order() -> None:
    queue = ScanQueue()
    assert queue.offer("a", Trigger.SCHEDULE, "daemon")
    assert queue.offer("b", Trigger.SCHEDULE, "daemon")
    assert queue.offer("c", Trigger.REQUEST, "ada@host", [Check.DRIFT])
    assert drain(queue) == [("c", "request"), ("a", "schedule"), ("b", "schedule")]


def test_one_pending_scan_per_stack_and_none_while_it_runs() -> None:
    queue = ScanQueue()
    assert queue.offer("a", Trigger.SCHEDULE, "daemon")
    assert not queue.offer("a", Trigger.SCHEDULE, "daemon"), "a second tick is skipped"
    assert not queue.offer("b", Trigger.SCHEDULE, "daemon", running=True)
    assert len(queue) == 1


def test_a_request_supersedes_a_queued_tick_but_not_a_queued_request() -> None:
    queue = ScanQueue()
    assert queue.offer("a", Trigger.SCHEDULE, "daemon")
    assert queue.offer("a", Trigger.REQUEST, "ada@host")
    assert not queue.offer("a", Trigger.REQUEST, "bob@host")
    item = queue.pop()
    assert item is not None
    assert (item.trigger, item.actor) == (Trigger.REQUEST, "ada@host")
    assert queue.pop() is None


def test_a_request_for_a_running_stack_waits_for_the_caller() -> None:
    queue = ScanQueue()
    assert not queue.offer("a", Trigger.REQUEST, "ada@host", running=True)
    assert len(queue) == 0


def test_the_retry_delay_doubles_up_to_the_interval() -> None:
    delays = [retry_delay(failures, interval=200) for failures in range(1, 6)]
    assert delays == [30, 60, 120, 200, 200]
    assert retry_delay(0, interval=200) == 0
    assert retry_delay(10_000, interval=3600) == 3600  # no overflow however long the streak
    assert retry_delay(1, interval=3600, jitter=1.1) == pytest.approx(33)


def test_the_failure_streak_counts_failures_until_a_success() -> None:
    assert (
        failure_streak(["failed", "timed_out", "cancelled", "failed", "succeeded", "failed"]) == 3
    )
    assert failure_streak(["succeeded", "failed"]) == 0
    assert failure_streak([]) == 0


def test_a_due_retry_is_returned_once_and_a_success_cancels_it() -> None:
    retries = Retries()
    retries.retry("a", at=133)
    retries.retry("b", at=130)
    retries.retry("c", at=131)
    retries.succeeded("c")
    assert retries.due(now=129) == []
    assert retries.due(now=131) == ["b"]
    assert retries.due(now=133) == ["a"]
    assert retries.due(now=1000) == []


def test_a_skip_streak_is_reported_at_its_first_skip_and_summed_up_at_its_end() -> None:
    streaks = SkipStreaks()
    assert streaks.skipped("a", T0)
    assert not streaks.skipped("a", T0 + timedelta(seconds=2))
    assert not streaks.skipped("a", T0 + timedelta(seconds=4))
    assert streaks.skipped("b", T0 + timedelta(seconds=1)), "each stack has its own streak"
    ended = streaks.ended("a")
    assert ended is not None
    assert (ended.count, ended.since) == (3, T0)
    assert streaks.skipped("a", T0 + timedelta(seconds=9)), "the next skip starts a new streak"


def test_a_single_skip_or_no_skip_has_nothing_to_sum_up() -> None:
    streaks = SkipStreaks()
    assert streaks.ended("a") is None
    streaks.skipped("a", T0)
    assert streaks.ended("a") is None
    assert streaks.ended("a") is None
    assert streaks.skipped("a", T0), "the streak ended with its scan"
