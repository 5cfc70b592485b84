"""The daemon's `schedule` jobs and its systemd status line, without a daemon."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
import schedule

from driftwarden.domain.model import StackState
from driftwarden.domain.schedule import Schedule
from driftwarden.hosts.scheduling import schedule_job
from driftwarden.hosts.single.status import status_line


def test_a_daily_schedule_runs_at_its_utc_time() -> None:
    job = schedule_job(schedule.Scheduler(), Schedule.parse("daily at 03:00"), jitter=600)
    assert (job.unit, job.interval, job.at_time, job.latest) == ("days", 1, time(3, 0), None)
    assert str(job.at_time_zone) == "UTC"


@pytest.mark.parametrize(
    ("every", "jitter", "earliest", "latest"),
    [
        ("every 60s", 0, 60, None),
        ("every 60s", 10, 50, 70),
        ("every 60s", 100, 30, 90),  # at most half the interval either way
        ("every 1h", 1, 3599, 3601),
    ],
)
def test_an_interval_spreads_by_its_jitter(
    every: str, jitter: int, earliest: int, latest: int | None
) -> None:
    job = schedule_job(schedule.Scheduler(), Schedule.parse(every), jitter)
    assert (job.unit, job.interval, job.latest) == ("seconds", earliest, latest)


def test_the_status_line_counts_states_and_names_the_next_job() -> None:
    states = [StackState.DRIFTED, StackState.IN_SYNC, StackState.FAILED, StackState.DRIFTED,
              StackState.CHANGES_PENDING]  # fmt: skip
    upcoming = ("alpha", datetime(2026, 1, 1, 12, 30, 5, tzinfo=UTC))
    assert status_line(5, 2, states, upcoming) == (
        "5 stacks, 2 running, 2 drifted, 1 pending, 1 failing; next: alpha at 12:30:05"
    )
    assert status_line(1, 0, [], None) == "1 stacks, 0 running, 0 drifted, 0 pending, 0 failing"
