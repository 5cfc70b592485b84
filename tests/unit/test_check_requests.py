"""Event-driven checks coalesce (service/watch.CheckRequests): a burst is one request
after it goes quiet, a stack is requested at most once per `min_interval`, and a busy
stack never holds back another."""

from __future__ import annotations

from datetime import UTC, datetime

from driftwarden.domain.platform import ObjectRef, PlatformEvent
from driftwarden.service.sources.watch import CheckRequests


def event(user: str, impersonated: str | None = None) -> PlatformEvent:
    return PlatformEvent(
        source="cluster", event_id=f"id-{user}", time=datetime(2026, 12, 7, tzinfo=UTC),
        verb="patch", user=user, groups=(), user_agent="kubectl/v1.33.13",
        source_ips=("127.0.0.1",), object=ObjectRef("", "services", "web", "web"), status=200,
        impersonated_user=impersonated,
    )  # fmt: skip


def test_a_burst_is_one_request_once_it_is_quiet() -> None:
    requests = CheckRequests(debounce=2, min_interval=30)
    for moment in (0.0, 0.5, 1.0, 1.5):
        requests.saw("web", [event("mallory")], moment)
    assert requests.due(3.0) == []  # 1.5 s quiet: not yet
    assert requests.due(3.5) == [("web", ["mallory"])]
    assert requests.due(10) == []  # nothing new


def test_a_stack_is_requested_at_most_once_per_interval() -> None:
    requests = CheckRequests(debounce=1, min_interval=30)
    requests.saw("web", [event("a")], 0)
    assert requests.due(1) == [("web", ["a"])]
    requests.saw("web", [event("b")], 2)
    assert requests.due(5) == []  # rested only 4 s
    assert requests.waiting == ["web"]
    assert requests.due(31) == [("web", ["b"])]


def test_a_busy_stack_does_not_hold_back_another_nor_its_own_first_write() -> None:
    requests = CheckRequests(debounce=1, min_interval=30)
    requests.saw("busy", [event("script")], 0)
    requests.saw("quiet", [event("admin", "eve")], 0)
    requests.saw("busy", [event("script")], 0.5)  # never quiet for a second
    assert requests.due(1.2) == [("quiet", ["admin as eve"])]
    for step in range(3, 10):
        requests.saw("busy", [event("script")], step / 2)
        assert requests.due(step / 2 + 0.1) == []
    # Five debounces after its first write, the busy stack is checked all the same.
    requests.saw("busy", [event("script")], 5.0)
    assert requests.due(5.1) == [("busy", ["script"])]
