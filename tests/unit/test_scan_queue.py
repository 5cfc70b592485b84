"""The daemon's queue and backoff, without a daemon."""

from __future__ import annotations

from driftwarden.model import Trigger
from driftwarden.service.daemon.scan_queue import Backoff, ScanQueue


def drain(queue: ScanQueue) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    while (item := queue.pop()) is not None:
        out.append((item.name, item.trigger))
    return out


def test_requests_go_first_then_arrival_order() -> None:
    queue = ScanQueue()
    assert queue.offer("a", Trigger.SCHEDULE, "daemon")
    assert queue.offer("b", Trigger.SCHEDULE, "daemon")
    assert queue.offer("c", Trigger.REQUEST, "ada@host", ["drift"])
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


def test_backoff_doubles_up_to_the_interval_and_resets_on_success() -> None:
    backoff = Backoff(30)
    delays = [backoff.failed("a", interval=200, now=0) for _ in range(5)]
    assert delays == [30, 60, 120, 200, 200]
    assert backoff.failures("a") == 5
    backoff.succeeded("a")
    assert backoff.failures("a") == 0
    assert backoff.failed("a", interval=200, now=0) == 30


def test_a_due_retry_is_returned_once() -> None:
    backoff = Backoff(30)
    backoff.failed("a", interval=3600, now=100, jitter=1.1)
    backoff.failed("b", interval=3600, now=100)
    assert backoff.due(now=129) == []
    assert backoff.due(now=130) == ["b"]
    assert backoff.due(now=133) == ["a"]
    assert backoff.due(now=1000) == []
