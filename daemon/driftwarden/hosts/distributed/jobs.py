"""The shared queue of checks, on procrastinate (PostgreSQL-backed task processing) in the
store's own database: one task, `check`, whose job is one stack's scan.

Each job carries the stack's name as its procrastinate `lock` (never two jobs of a stack
at once, whichever workers fetch them) and, when scheduled, as its `queueing_lock` (a
stack already waiting in the queue is not queued again: procrastinate refuses the second
job, and the scheduler records the skip). Requested scans (`driftwarden trigger`) carry
no queueing lock: a request always runs, after what is queued.

A failed check queues its own retry (after the daemon's backoff) as a new job, and a lost
worker's job is ended and queued anew, rather than put back by procrastinate's retry: a
job put back to `todo` collides with a job the scheduler queued meanwhile (the queueing
lock), and a retry that cannot be recorded leaves the job `doing`, its stack locked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from procrastinate import App, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import JobDeferrer
from procrastinate.types import JSONValue

from driftwarden.domain.model import Check, Trigger
from driftwarden.store.db import Store

CHECK_TASK = "driftwarden.check"
QUEUE = "checks"


def job_lock(stack: str) -> str:
    return f"stack:{stack}"


def queue_app(store: Store) -> App:
    """A procrastinate app on the store's database (opened by whoever uses it)."""
    connector = PsycopgConnector(
        conninfo=store.libpq_url(), min_size=1, max_size=4,
        kwargs={"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                "keepalives_count": 3},
    )  # fmt: skip
    return App(connector=connector)


@dataclass(frozen=True)
class CheckJob:
    """What a job asks: scan `stack` (its `checks`, or all) as `actor`, because `trigger`.
    (A failing stack's streak is read from the store, not carried by its retries.)"""

    stack: str
    trigger: Trigger
    actor: str
    checks: Sequence[Check] | None = None

    @classmethod
    def from_arguments(cls, arguments: dict[str, Any]) -> CheckJob:
        """The job whose `arguments()` these are (a job's task_kwargs)."""
        checks = arguments.get("checks")
        return cls(
            str(arguments["stack"]),
            Trigger(str(arguments["trigger"])),
            str(arguments["actor"]),
            [Check(str(c)) for c in checks] if isinstance(checks, list) else None,
        )

    def arguments(self) -> dict[str, JSONValue]:
        return {
            "stack": self.stack,
            "trigger": self.trigger.value,
            "actor": self.actor,
            "checks": [c.value for c in self.checks] if self.checks else None,
        }


def _deferrer(app: App, job: CheckJob, schedule_in: float | None) -> JobDeferrer:
    # Requests always run (after what is queued); anything else joins a queued job.
    queueing_lock = None if job.trigger is Trigger.REQUEST else job_lock(job.stack)
    return app.configure_task(
        CHECK_TASK, queue=QUEUE, lock=job_lock(job.stack), queueing_lock=queueing_lock,
        schedule_in=None if schedule_in is None else {"seconds": round(schedule_in)},
    )  # fmt: skip


async def enqueue(app: App, job: CheckJob, schedule_in: float | None = None) -> int | None:
    """Queue `job` (to start after `schedule_in` seconds); its procrastinate id, or None
    when the stack is queued already (a job that has not started)."""
    try:
        return await _deferrer(app, job, schedule_in).defer_async(**job.arguments())
    except AlreadyEnqueued:
        return None


def enqueue_from_task(app: App, job: CheckJob, schedule_in: float | None = None) -> int | None:
    """`enqueue`, from a task's thread (a retry queued by the job that failed)."""
    try:
        return _deferrer(app, job, schedule_in).defer(**job.arguments())
    except AlreadyEnqueued:
        return None
