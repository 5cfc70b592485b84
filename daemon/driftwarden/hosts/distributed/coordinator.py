"""The elected scheduler of a distributed fleet. Every worker runs a coordinator; the one
holding the scheduler lock (a PostgreSQL session advisory lock: store/locks.py) is the
fleet's only scheduler until its session ends, when another worker's coordinator takes the
lock within a tick. The scheduler

- queues each stack's checks on its schedule, once per period however many workers run
  (the single-host daemon's `Schedules`; a stack still queued is not queued again);
- queues `driftwarden trigger` requests, the digests and the hourly history ingest;
- takes over dead workers' work: their jobs (no heartbeat for `takeover_after`) are queued
  again, and their operations, left `running` with their stack lock freed, end
  `interrupted`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from procrastinate import App
from procrastinate.jobs import Status

from driftwarden.domain.model import Check, Trigger
from driftwarden.hosts.distributed.jobs import QUEUE, CheckJob, enqueue
from driftwarden.hosts.lifecycle import reload_config
from driftwarden.hosts.requests import claim_requests, requested_checks
from driftwarden.hosts.scheduling import Schedules
from driftwarden.hosts.skips import SkipRecorder
from driftwarden.service.logs import logger
from driftwarden.service.runtime import DAEMON_ACTOR, Runtime
from driftwarden.service.scan.history import ingest_all_history
from driftwarden.service.sources.watch import AuditWatch
from driftwarden.service.trust.digests import DigestSchedule
from driftwarden.service.trust.forward import Forwarder
from driftwarden.store.locks import HeldLock, recover_orphaned, try_scheduler_lock

TICK_SECONDS = 0.5


class Coordinator:
    def __init__(
        self, runtime: Runtime, app: App, stopping: threading.Event, name: str, config_path: Path
    ) -> None:
        self._runtime = runtime
        self._config_path = config_path
        self._app = app
        self._stopping = stopping
        self._name = name
        self._held: HeldLock | None = None
        self._schedules: Schedules | None = None
        self._due: list[CheckJob] = []  # from the schedule's callbacks, queued by the tick
        self._due_lock = threading.Lock()
        self._skips = SkipRecorder(runtime.store)
        self._ingest: threading.Thread | None = None
        self._next_takeover = 0.0
        self.reload_requested = threading.Event()
        # The elected scheduler reads the audit logs and turns their writes into requests.
        self._watch = AuditWatch(runtime, stopping)
        # …and signs the chain's digests and forwards its events (one process at a time).
        self._digests = DigestSchedule(runtime, stopping)
        self._forwarder = Forwarder(runtime, stopping)

    @property
    def leading(self) -> bool:
        return self._held is not None

    async def run(self) -> None:
        """Tick until `stopping` is set; then give the lock up (another worker takes it)."""
        try:
            while not self._stopping.is_set():
                try:
                    await self._tick()
                except Exception:  # a store or queue error: the next tick tries again
                    logger.exception("scheduler tick failed")
                await asyncio.sleep(TICK_SECONDS)
        finally:
            await asyncio.to_thread(self._resign)

    async def _tick(self) -> None:
        if self.reload_requested.is_set():
            self.reload_requested.clear()
            await asyncio.to_thread(self._reload)
        if not await asyncio.to_thread(self._hold):
            return
        schedules = self._schedules
        assert schedules is not None
        await asyncio.to_thread(schedules.jobs.run_pending)
        await asyncio.to_thread(self._watch.poll)
        loop = asyncio.get_running_loop()

        def busy() -> set[str]:  # on claim_requests' thread, only when requests wait
            return asyncio.run_coroutine_threadsafe(self._queued_or_running(), loop).result()

        claimer = f"scheduler@{self._name}"
        requests = await asyncio.to_thread(claim_requests, self._runtime, claimer, busy)
        for request in requests:
            logger.info("scan requested", extra={"stack": request.stack, "request_id": request.id})
            self._submit(request.stack, Trigger.REQUEST, request.requested_by,
                         requested_checks(request))  # fmt: skip
        await self._enqueue_due()
        if time.monotonic() >= self._next_takeover:
            self._next_takeover = time.monotonic() + self._takeover_after / 3
            await self._take_over()

    @property
    def _takeover_after(self) -> float:
        return float(self._runtime.config.daemon.takeover_after)

    # -- the election ---------------------------------------------------------------

    def _hold(self) -> bool:
        """Whether this worker is the scheduler: it keeps the lock while its session
        answers, and tries to take it when no one holds it."""
        if self._held is not None:
            if self._held.alive():
                return True
            logger.warning("scheduler lock lost (its database session ended)")
            self._resign()
        held = try_scheduler_lock(self._runtime.store)
        if held is None:
            return False
        self._held = held
        logger.info("elected scheduler", extra={"worker": self._name})
        self._schedules = Schedules(self._runtime, self._submit, self._ingest_history)
        self._schedules.start()  # the overdue stacks are queued at once
        self._digests.start()
        self._forwarder.start()
        self._next_takeover = 0.0
        return True

    def _resign(self) -> None:
        if self._schedules is not None:
            self._schedules.jobs.clear()
            self._schedules = None
            self._digests.close()
            self._forwarder.close()
        if self._held is not None:
            self._held.release()
            self._held = None

    def _reload(self) -> None:
        if reload_config(self._runtime, self._config_path) is not None and self._schedules:
            self._schedules.restart()

    # -- queueing -------------------------------------------------------------------

    def _submit(
        self, name: str, trigger: Trigger, actor: str = DAEMON_ACTOR,
        checks: Sequence[Check] | None = None,
    ) -> bool:  # fmt: skip
        """The schedule's callback (on a thread): the tick queues it."""
        with self._due_lock:
            self._due.append(CheckJob(name, trigger, actor, checks))
        return True

    async def _enqueue_due(self) -> None:
        with self._due_lock:
            due, self._due = self._due, []
        for job in due:
            job_id = await enqueue(self._app, job)
            if job_id is None:  # still queued from its last period: skipped, recorded
                await asyncio.to_thread(self._skips.skipped, job.stack, job.trigger)
            else:
                await asyncio.to_thread(self._skips.scan_ended, job.stack)
                logger.info("check queued", extra={"stack": job.stack, "trigger": job.trigger,
                                                   "job_id": job_id})  # fmt: skip

    async def _queued_or_running(self) -> set[str]:
        """Stacks with a job waiting or running: a request for one waits for it."""
        busy: set[str] = set()
        for status in ("todo", "doing"):
            for job in await self._app.job_manager.list_jobs_async(queue=QUEUE, status=status):
                busy.add(str(job.task_kwargs.get("stack")))
        return busy

    def _ingest_history(self) -> None:
        """Hourly, every stack's update history, on a thread of the scheduler's worker."""
        if self._ingest is not None and self._ingest.is_alive():
            return
        self._ingest = threading.Thread(
            target=ingest_all_history, args=(self._runtime, self._stopping),
            name="history", daemon=True,
        )  # fmt: skip
        self._ingest.start()

    # -- takeover -------------------------------------------------------------------

    async def _take_over(self) -> None:
        """Jobs of workers silent for `takeover_after` run again elsewhere; operations
        whose holder was lost end `interrupted`."""
        manager = self._app.job_manager
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=self._takeover_after):
            stack = str(job.task_kwargs.get("stack"))
            logger.warning(
                "worker lost: its check is queued again",
                extra={"stack": stack, "job_id": job.id, "worker_id": job.worker_id},
            )
            # Ended first: it holds the stack's job lock, which the new job needs.
            await manager.finish_job(job, status=Status.FAILED, delete_job=False)
            await enqueue(self._app, CheckJob.from_arguments(job.task_kwargs))
        await manager.prune_stalled_workers(self._takeover_after)
        for operation_id in await asyncio.to_thread(
            recover_orphaned, self._runtime.store, DAEMON_ACTOR
        ):
            logger.warning("operation interrupted: its worker was lost",
                           extra={"operation_id": operation_id})  # fmt: skip
