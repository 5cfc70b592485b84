"""When stacks are scanned: on their configured schedules, at once when overdue (at start
and on reload), and again with backoff while they fail; and the scheduled jobs that are
not scans: the hourly history ingest and the digests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import schedule

from driftwarden.config import StackConfig
from driftwarden.domain.model import Check, OperationStatus, Trigger
from driftwarden.domain.schedule import Schedule
from driftwarden.hosts.bookkeeping import Retries
from driftwarden.hosts.lifecycle import retry_after_failure
from driftwarden.service.logs import logger
from driftwarden.service.messages.digest import queue_digest
from driftwarden.service.runtime import Runtime
from driftwarden.store.queries import stack_summaries


def schedule_job(scheduler: schedule.Scheduler, plan: Schedule, jitter: int = 0) -> schedule.Job:
    """A `schedule` job for a config schedule; intervals may spread by ± `jitter` (at most
    half the interval)."""
    job: schedule.Job
    if plan.daily_at is not None:
        job = scheduler.every().day.at(f"{plan.daily_at:%H:%M}", "UTC")
        return job
    seconds = plan.interval_seconds or 3600
    jitter = min(jitter, seconds // 2)
    job = scheduler.every(seconds - jitter)
    if jitter:
        job = job.to(seconds + jitter)
    job = job.seconds
    return job


class Schedules:
    """The `schedule` jobs (`jobs`, run by the loop) and the retries of failing stacks.
    `submit` queues a scan; `ingest_history` starts the history ingest."""

    def __init__(
        self,
        runtime: Runtime,
        submit: Callable[[str, Trigger], object],
        ingest_history: Callable[[], None],
    ) -> None:
        self._runtime = runtime
        self._submit = submit
        self._ingest_history = ingest_history
        self.jobs = schedule.Scheduler()
        self._lock = threading.Lock()  # outcomes come from the workers, retries from the loop
        self._backoff = Retries()

    def start(self) -> None:
        """Schedule every job of the config, and submit the stacks that are due now."""
        config = self._runtime.config
        for stack in config.stacks:
            job = schedule_job(self.jobs, config.schedule_of(stack), stack.jitter or 0)
            job.do(self._submit, stack.name, Trigger.SCHEDULE).tag(stack.name)
        # At least hourly, whatever the scan schedules: updates made outside driftwarden.
        self.jobs.every(1).hours.do(self._ingest_history).tag("history")
        for target in config.targets:
            if target.digest is not None:
                job = schedule_job(self.jobs, target.digest)
                job.do(self._queue_digest, target.name).tag("digest")
        self._submit_due()

    def restart(self) -> None:
        """After a reload: the new config's jobs replace the old ones."""
        self.jobs.clear()
        self.start()

    def _submit_due(self) -> None:
        """Stacks never scanned, overdue by their schedule, or whose latest check was cut
        short by a crash (`interrupted`), run now."""
        config = self._runtime.config
        now = datetime.now(UTC)
        with self._runtime.store.read() as session:
            summaries = stack_summaries(
                session, [s.name for s in config.stacks], [c.value for c in Check]
            )
        for stack, summary in zip(config.stacks, summaries, strict=True):
            interrupted = any(op.status == OperationStatus.INTERRUPTED
                              for op in summary.latest.values())  # fmt: skip
            if interrupted or config.schedule_of(stack).next_run(summary.last_scan, now) <= now:
                self._submit(stack.name, Trigger.SCHEDULE)

    def _queue_digest(self, name: str) -> None:
        """A store read and one insert: cheap enough for the loop; the sender delivers it."""
        config = self._runtime.config
        target = config.target(name)
        if target is None:
            return
        try:
            result = queue_digest(self._runtime.store, config, target)
        except Exception:
            logger.exception("digest not queued", extra={"target": name})
            return
        logger.info(
            "digest", extra={"target": name, "status": result.status, "stacks": result.stacks,
                             "findings": result.findings},
        )  # fmt: skip

    def scan_finished(self, stack: StackConfig, *, failed: bool, now: float) -> None:
        """A failing stack is retried with backoff (up to its interval), a healthy one
        on its schedule only."""
        if not failed:
            with self._lock:
                self._backoff.succeeded(stack.name)
            return
        failures, delay = retry_after_failure(self._runtime, stack)
        with self._lock:
            self._backoff.retry(stack.name, at=now + delay)
        logger.info("stack failing: retry scheduled",
                    extra={"stack": stack.name, "failures": failures,
                           "retry_in_s": round(delay)})  # fmt: skip

    def retry_failed(self, now: float) -> None:
        with self._lock:
            due = self._backoff.due(now)
        for name in due:
            self._submit(name, Trigger.SCHEDULE)

    def upcoming(self) -> tuple[str, datetime] | None:
        """The next job to run: its tag (a stack, `history` or `digest`) and when."""
        runs = [(job.next_run, str(next(iter(job.tags), "?"))) for job in self.jobs.get_jobs()
                if job.next_run is not None]  # fmt: skip
        if not runs:
            return None
        when, tag = min(runs, key=lambda run: run[0])
        return tag, when
