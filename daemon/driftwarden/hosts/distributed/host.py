"""`driftwarden worker`: one host of a distributed fleet. It runs checks from the shared
queue (up to `[daemon] max_parallel` at once, each through the one scan flow, in the same
isolated engine workers as the single-host daemon), delivers the outbox like any sender,
and runs a coordinator that becomes the fleet's scheduler when elected.

Stopping: the first SIGTERM/SIGINT drains (no new job is taken; running checks finish),
a second one hurries (running checks are cancelled and queued again for another worker).
SIGHUP reloads the config. A worker killed outright is taken over by the scheduler once
its heartbeat is `takeover_after` old.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from procrastinate import JobContext
from procrastinate.worker import Worker as QueueWorker

from driftwarden.domain.errors import DriftwardenError, UsageError
from driftwarden.domain.model import Check, CheckStatus, ErrorKind, Trigger
from driftwarden.hosts.distributed.coordinator import Coordinator
from driftwarden.hosts.distributed.jobs import (
    CHECK_TASK,
    QUEUE,
    CheckJob,
    enqueue_from_task,
    queue_app,
)
from driftwarden.hosts.lifecycle import retry_after_failure
from driftwarden.hosts.sdnotify import Notifier
from driftwarden.hosts.sender import OutboxSender
from driftwarden.service.logs import logger
from driftwarden.service.preflight import load_service_config
from driftwarden.service.runtime import DAEMON_ACTOR, Runtime
from driftwarden.service.scan.flow import scan_stack
from driftwarden.store.queue_tables import ensure_queue_schema

FETCH_POLL_SECONDS = 1.0  # retries and jobs missed by LISTEN/NOTIFY wait at most this
PULSE_SECONDS = 0.5


class Worker:
    def __init__(
        self, config_path: Path, *, name: str | None = None, notifier: Notifier | None = None
    ) -> None:
        config = load_service_config(config_path)
        if config.daemon.mode != "distributed":
            raise UsageError(
                f'{config_path}: [daemon] mode is "{config.daemon.mode}": `worker` serves a '
                "distributed fleet",
                hint='set mode = "distributed" with a PostgreSQL database_url, or use `run`',
            )
        self.name = name or socket.gethostname()
        self.notifier = notifier or Notifier.from_environment()
        self.runtime = Runtime.open(config, actor=DAEMON_ACTOR)
        if ensure_queue_schema(self.runtime.store):
            logger.info("queue tables created")
        self.runtime.ensure_plugins()
        self.app = queue_app(self.runtime.store)
        self.app.task(name=CHECK_TASK, queue=QUEUE, pass_context=True)(self._check)
        self.stopping = threading.Event()  # drain: no new job, the coordinator resigns
        self.cancel = threading.Event()  # hurry: the running checks stop
        self.coordinator = Coordinator(self.runtime, self.app, self.stopping, self.name,
                                       config_path)  # fmt: skip
        self.sender = OutboxSender(self.runtime, self.stopping)
        self._queue_worker: QueueWorker | None = None
        self._running: dict[int, str] = {}  # job id → stack
        self._running_lock = threading.Lock()
        self._last_ping = 0.0

    # -- life cycle -----------------------------------------------------------------

    def run(self) -> int:
        asyncio.run(self._main())
        return 0

    async def _main(self) -> None:
        daemon = self.runtime.config.daemon
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop_signal, signum)
        loop.add_signal_handler(signal.SIGHUP, self.coordinator.reload_requested.set)
        async with self.app.open_async():
            self._queue_worker = QueueWorker(
                self.app, queues=[QUEUE], name=self.name, concurrency=daemon.max_parallel,
                fetch_job_polling_interval=FETCH_POLL_SECONDS, install_signal_handlers=False,
                update_heartbeat_interval=max(1.0, daemon.takeover_after / 3),
                stalled_worker_timeout=daemon.takeover_after, delete_jobs="successful",
            )  # fmt: skip
            coordinator = asyncio.create_task(self.coordinator.run(), name="scheduler")
            pulse = asyncio.create_task(self._pulse(), name="pulse")
            self.sender.start()
            logger.info("worker started", extra={"worker": self.name,
                                                 "max_parallel": daemon.max_parallel})  # fmt: skip
            self.notifier.ready()
            try:
                await self._queue_worker.run()  # type: ignore[no-untyped-call]  # (untyped upstream)
            finally:
                self.stopping.set()
                await coordinator
                pulse.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pulse
        self.notifier.stopping()
        self.sender.close()
        self.runtime.close_engines()
        logger.info("worker stopped", extra={"worker": self.name})

    def _stop_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if not self.stopping.is_set():
            logger.info("draining: running checks finish, no new one starts",
                        extra={"signal": name, "running": self.running()})  # fmt: skip
            self.stopping.set()
            self.notifier.stopping()
            if self._queue_worker is not None:
                self._queue_worker.stop()  # type: ignore[no-untyped-call]
        else:
            logger.info("stopping now: running checks are cancelled and queued again",
                        extra={"signal": name})  # fmt: skip
            self.cancel.set()

    async def _pulse(self) -> None:
        """Until the worker ends, a drain included (checks may run for minutes after the
        coordinator resigned): the systemd status and watchdog, idle engines retired."""
        while True:
            await asyncio.to_thread(self._tick)  # it may wait on processes: off the loop
            await asyncio.sleep(PULSE_SECONDS)

    def _tick(self) -> None:
        self.runtime.retire_idle_workers()
        role = "scheduler" if self.coordinator.leading else "worker"
        running = self.running()
        self.notifier.status(f"{role}; running: {', '.join(running) if running else 'none'}")
        interval = self.notifier.watchdog_interval
        now = time.monotonic()
        if interval is not None and now - self._last_ping >= interval / 2:
            self.notifier.watchdog()
            self._last_ping = now

    def running(self) -> list[str]:
        with self._running_lock:
            return sorted(self._running.values())

    # -- the task -------------------------------------------------------------------

    def _check(
        self, context: JobContext, stack: str, trigger: str, actor: str,
        checks: list[str] | None = None, failures: int = 0,
    ) -> dict[str, Any]:  # fmt: skip
        """One job: the stack's scan, on a thread of procrastinate's. A failure queues the
        retry (after its backoff); a hurried stop queues the scan again for another worker."""
        job_id = context.job.id or 0
        selected = [Check(c) for c in checks] if checks else None
        try:
            config = self.runtime.config.stack(stack)
        except DriftwardenError:
            logger.warning("job for a stack not in this worker's config: dropped",
                           extra={"stack": stack, "job_id": job_id})  # fmt: skip
            return {"stack": stack, "dropped": "not configured"}
        with self._running_lock:
            self._running[job_id] = stack
        try:
            done = scan_stack(
                self.runtime, config, selected,
                trigger=Trigger(trigger), actor=actor, cancel=self.cancel,
            )  # fmt: skip
        finally:
            with self._running_lock:
                self._running.pop(job_id, None)
        outcome: dict[str, Any] = {
            "stack": stack, "worker": self.name,
            "operations": [r.operation_id for r in done.results],
        }  # fmt: skip
        if self.cancel.is_set() or any(r.error_kind is ErrorKind.CANCELLED for r in done.results):
            again = CheckJob(stack, Trigger(trigger), actor, selected)
            enqueue_from_task(self.app, again)
            logger.info("check stopped: queued again", extra={"stack": stack})
            return outcome | {"requeued": True}
        if any(r.status is CheckStatus.FAILED for r in done.results):
            failures, delay = retry_after_failure(self.runtime, config)
            retry = CheckJob(stack, Trigger.SCHEDULE, DAEMON_ACTOR, None)
            queued = enqueue_from_task(self.app, retry, schedule_in=delay)
            logger.info(
                "stack failing: retry queued" if queued else "stack failing: already queued",
                extra={"stack": stack, "failures": failures, "retry_in_s": round(delay)},
            )  # fmt: skip
        return outcome
