"""The daemon: its loop, and the parts it is made of."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import schedule

from driftwarden.config import StackConfig, load_config
from driftwarden.errors import DriftwardenError
from driftwarden.model import Check, CheckStatus, StackState, Trigger, stack_state
from driftwarden.schedule import Schedule
from driftwarden.sdnotify import Notifier
from driftwarden.service.daemon.scan_queue import Backoff, ScanQueue
from driftwarden.service.digest import queue_digest
from driftwarden.service.flow import scan_stack
from driftwarden.service.history import ingest_history
from driftwarden.service.logs import logger
from driftwarden.service.notifications import deliver_due
from driftwarden.service.runtime import DAEMON_ACTOR, Runtime
from driftwarden.service.scan import CheckResult
from driftwarden.store.queries import stack_summaries
from driftwarden.store.requests import claim, pending_requests, record_request_rejected
from driftwarden.store.skips import record_skip_streak_ended, record_skip_streak_started

REQUEST_POLL_SECONDS = 0.5
NOTIFY_POLL_SECONDS = 2.0
RETRY_BASE_SECONDS = 30.0
# Settings a reload cannot change under a running daemon.
_RESTART_ONLY = ("state_dir", "database_url", "backend_url", "passphrase_file", "pulumi_home",
                 "pulumi_bin", "max_parallel")  # fmt: skip


@dataclass
class _SkipStreak:
    since: datetime
    count: int = 0


class Daemon:
    def __init__(self, config_path: Path, notifier: Notifier | None = None) -> None:
        self.config_path = config_path
        self.notifier = notifier or Notifier.from_environment()
        self.config = load_config(config_path)
        self.config.require_stacks()
        self.runtime = Runtime.open(self.config, actor=DAEMON_ACTOR, isolated=True)
        self._install_plugins()
        self.scheduler = schedule.Scheduler()
        self.pool = ThreadPoolExecutor(
            max_workers=self.config.daemon.max_parallel, thread_name_prefix="scan"
        )
        self.stopping = threading.Event()
        self.reload_requested = threading.Event()
        self._lock = threading.RLock()  # a done-callback may run inside submit()
        self._running: dict[str, Future[None]] = {}
        self._queue = ScanQueue()
        self._backoff = Backoff(RETRY_BASE_SECONDS)
        self._states: dict[str, StackState] = {}  # as `status` shows them (model.stack_state)
        self._history_job: Future[None] | None = None
        self._skips: dict[str, _SkipStreak] = {}
        self._claimer = f"daemon@{socket.gethostname()}:{os.getpid()}"
        self._last_status = ""

    # -- the loop -------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True) -> int:
        if install_signal_handlers:
            self._install_signal_handlers()
        self._load_states()
        self._schedule_all()
        self._submit_due()
        logger.info(
            "daemon started",
            extra={
                "stacks": len(self.config.stacks),
                "max_parallel": self.config.daemon.max_parallel,
            },
        )
        sender = threading.Thread(target=self._deliver_notifications, name="outbox", daemon=True)
        sender.start()
        self.notifier.ready()
        next_request_poll = 0.0
        last_ping = 0.0
        while not self.stopping.is_set():
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            self.scheduler.run_pending()
            now = time.monotonic()
            if now >= next_request_poll:
                self._claim_requests()
                next_request_poll = now + REQUEST_POLL_SECONDS
            self._retry_failed(now)
            self._dispatch()
            interval = self.notifier.watchdog_interval
            if interval is not None and now - last_ping >= interval:
                # Pinged from the loop itself: a stuck loop stops the pings.
                self.notifier.watchdog()
                last_ping = now
            self._publish_status()
            idle = self.scheduler.idle_seconds
            wait = 0.5 if idle is None else max(0.05, min(0.5, idle))
            if interval is not None:
                wait = min(wait, interval / 2)
            self.stopping.wait(wait)
        return self._shutdown()

    def _shutdown(self) -> int:
        logger.info("stopping: interrupting running checks", extra={"running": self.running()})
        self.notifier.stopping()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._deliver_once()  # what the last scans queued; the rest waits in the outbox
        logger.info("daemon stopped")
        return 0

    def stop(self) -> None:
        self.stopping.set()

    # -- notifications --------------------------------------------------------------

    def _deliver_notifications(self) -> None:
        """The outbox sender: its own thread, so a slow target never stalls the loop."""
        while not self.stopping.wait(NOTIFY_POLL_SECONDS):
            self._deliver_once()

    def _deliver_once(self) -> None:
        try:
            deliver_due(self.runtime.store, self.config, DAEMON_ACTOR)
        except Exception:
            logger.exception("notification delivery failed")

    # -- signals --------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            logger.info("signal received", extra={"signal": signal.Signals(signum).name})
            self.stopping.set()

        def reload(_signum: int, _frame: FrameType | None) -> None:
            self.reload_requested.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def reload(self) -> None:
        self.notifier.reloading()
        try:
            config = load_config(self.config_path)
            config.require_stacks()
        except DriftwardenError as exc:
            logger.error(
                "config reload failed; keeping the running config",
                extra={"error": str(exc)},
            )
            self.notifier.ready()
            return
        changed = [
            key for key in _RESTART_ONLY
            if getattr(config.daemon, key) != getattr(self.config.daemon, key)
        ]  # fmt: skip
        if changed:
            logger.warning("these settings need a restart to apply", extra={"keys": changed})
        self.config = config
        self.runtime.config = config
        self.runtime.record_config()
        self._install_plugins()
        self.scheduler.clear()
        self._schedule_all()
        self._submit_due()
        logger.info("config reloaded", extra={"stacks": len(config.stacks)})
        self.notifier.ready()

    def _install_plugins(self) -> None:
        try:
            for plugin, now in self.runtime.install_plugins():
                if now:
                    logger.info("plugin installed", extra={"plugin": plugin.label})
        except DriftwardenError as exc:  # the stacks that need it fail, and say why
            logger.error("plugin installation failed", extra={"error": str(exc)})

    # -- scheduling -----------------------------------------------------------------

    def _job(self, plan: Schedule, jitter: int = 0) -> schedule.Job:
        """A `schedule` job for a config schedule; intervals may spread by ± `jitter`."""
        job: schedule.Job
        if plan.daily_at is not None:
            job = self.scheduler.every().day.at(f"{plan.daily_at:%H:%M}", "UTC")
            return job
        seconds = plan.interval_seconds or 3600
        jitter = min(jitter, seconds // 2)
        job = self.scheduler.every(seconds - jitter)
        if jitter:
            job = job.to(seconds + jitter)
        job = job.seconds
        return job

    def _schedule_all(self) -> None:
        for stack in self.config.stacks:
            job = self._job(self.config.schedule_of(stack), stack.jitter or 0)
            job.do(self.submit, stack.name, Trigger.SCHEDULE).tag(stack.name)
        # At least hourly, whatever the scan schedules: updates made outside driftwarden.
        self.scheduler.every(1).hours.do(self._ingest_all).tag("history")
        for target in self.config.targets:
            if target.digest is not None:
                self._job(target.digest).do(self._queue_digest, target.name).tag("digest")

    def _queue_digest(self, name: str) -> None:
        """A store read and one insert: cheap enough for the loop; the sender delivers it."""
        target = self.config.target(name)
        if target is None:
            return
        try:
            result = queue_digest(self.runtime.store, self.config, target)
        except Exception:
            logger.exception("digest not queued", extra={"target": name})
            return
        logger.info(
            "digest", extra={"target": name, "status": result.status, "stacks": result.stacks,
                             "findings": result.findings},
        )  # fmt: skip

    def _load_states(self, names: Sequence[str] | None = None) -> None:
        """Each stack's state from the store, by the rule `status` uses."""
        wanted = list(names) if names is not None else [s.name for s in self.config.stacks]
        with self.runtime.store.read() as session:
            summaries = stack_summaries(session, wanted, [c.value for c in Check])
        with self._lock:
            for summary in summaries:
                self._states[summary.stack] = stack_state(
                    (op.status, op.outcome) for op in summary.latest.values()
                )

    def _submit_due(self) -> None:
        """Stacks never scanned, or overdue by their schedule, run now."""
        now = datetime.now(UTC)
        with self.runtime.store.read() as session:
            summaries = stack_summaries(
                session, [s.name for s in self.config.stacks], [c.value for c in Check]
            )
        for stack, summary in zip(self.config.stacks, summaries, strict=True):
            if self.config.schedule_of(stack).next_run(summary.last_scan, now) <= now:
                self.submit(stack.name, Trigger.SCHEDULE)

    def submit(
        self,
        name: str,
        trigger: Trigger,
        actor: str = DAEMON_ACTOR,
        checks: Sequence[str] | None = None,
    ) -> bool:
        """Queue a scan of `name`; a stack already queued or running is skipped (recorded)."""
        if self.stopping.is_set():
            return False
        with self._lock:
            skipped = not self._queue.offer(name, trigger, actor, checks,
                                            running=name in self._running)  # fmt: skip
        if skipped:
            self._skipped(name, trigger)
        self._dispatch()
        return not skipped

    def _skipped(self, name: str, trigger: Trigger) -> None:
        """A skip streak is audited twice at most: its first skip, and when it ends, how
        many there were (a 2 s schedule on a slow stack would flood the chain)."""
        with self._lock:
            streak = self._skips.setdefault(name, _SkipStreak(datetime.now(UTC)))
            streak.count += 1
            first = streak.count == 1
        logger.info("scan skipped: still running", extra={"stack": name, "trigger": trigger})
        if first:
            with contextlib.suppress(Exception), self.runtime.store.write() as session:
                record_skip_streak_started(session, self.runtime.store.audit, name,
                                           actor=DAEMON_ACTOR, trigger=trigger)  # fmt: skip

    def _end_skip_streak(self, name: str) -> None:
        with self._lock:
            streak = self._skips.pop(name, None)
        if streak is not None and streak.count > 1:
            with contextlib.suppress(Exception), self.runtime.store.write() as session:
                record_skip_streak_ended(session, self.runtime.store.audit, name,
                                         actor=DAEMON_ACTOR, skipped=streak.count,
                                         since=streak.since)  # fmt: skip

    def _dispatch(self) -> None:
        """Start queued scans while fewer than max_parallel run: never more engines."""
        with self._lock:
            while len(self._queue) and len(self._running) < self.config.daemon.max_parallel:
                if self.stopping.is_set():
                    self._queue.clear()
                    return
                item = self._queue.pop()
                if item is None:
                    return
                future = self.pool.submit(
                    self._scan, item.name, item.trigger, item.actor, item.checks
                )
                self._running[item.name] = future
                future.add_done_callback(functools.partial(self._done, item.name))

    def _done(self, name: str, _future: Future[None]) -> None:
        with self._lock:
            self._running.pop(name, None)
        self._end_skip_streak(name)
        if not self.stopping.is_set():
            self._claim_requests()  # a request waiting for this stack goes before the queue
        self._dispatch()

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def _scan(self, name: str, trigger: Trigger, actor: str, checks: Sequence[str] | None) -> None:
        try:
            stack = self.config.stack(name)
        except DriftwardenError:
            return  # removed by a reload since it was queued
        selected = [Check(c) for c in checks] if checks else None
        try:
            done = scan_stack(self.runtime, stack, selected, trigger=trigger, actor=actor,
                              cancel=self.stopping)  # fmt: skip
        except Exception:
            logger.exception("scan crashed", extra={"stack": name})
            self._record_outcome(stack, failed=True)
            return
        if done.results:
            failed = any(r.status is CheckStatus.FAILED for r in done.results)
            self._record_outcome(stack, failed=failed, results=done.results)

    def _ingest_all(self) -> None:
        """At least hourly, every stack's history, on the worker pool (the loop never waits
        on the engine; a shutdown waits for it or cancels it); one at a time."""

        def ingest() -> None:
            for stack in self.config.stacks:
                if not self.stopping.is_set():
                    ingest_history(self.runtime, stack, self.stopping)

        with self._lock:
            if self._history_job is None or self._history_job.done():
                self._history_job = self.pool.submit(ingest)

    def _record_outcome(
        self, stack: StackConfig, *, failed: bool, results: Sequence[CheckResult] = ()
    ) -> None:
        """Retry a failing stack with backoff; a stop is nobody's failure."""
        with self._lock:
            if failed and any(r.error_kind == "cancelled" for r in results):
                return  # shutting down: not the stack's fault
            if failed:
                interval = self.config.schedule_of(stack).interval_seconds or 86400
                delay = self._backoff.failed(stack.name, interval=interval, now=time.monotonic(),
                                             jitter=random.uniform(0.9, 1.1))  # fmt: skip
                logger.info(
                    "stack failing: retry scheduled",
                    extra={"stack": stack.name, "failures": self._backoff.failures(stack.name),
                           "retry_in_s": round(delay)},
                )  # fmt: skip
            else:
                self._backoff.succeeded(stack.name)
        with contextlib.suppress(DriftwardenError):
            self._load_states([stack.name])

    def _retry_failed(self, now: float) -> None:
        with self._lock:
            due = self._backoff.due(now)
        for name in due:
            self.submit(name, Trigger.SCHEDULE)

    def _claim_requests(self) -> None:
        try:
            with self.runtime.store.write() as session:
                requests = pending_requests(session)
                busy = set(self.running())
                known = {s.name for s in self.config.stacks}
                to_run = []
                for request in requests:
                    if request.stack in busy:
                        continue  # picked up as soon as the running scan ends
                    if claim(session, request.id, self._claimer):
                        if request.stack in known:
                            to_run.append(request)
                        else:
                            record_request_rejected(
                                session, self.runtime.store.audit, request,
                                actor=DAEMON_ACTOR, reason="unknown stack",
                            )  # fmt: skip
        except DriftwardenError as exc:
            logger.error("cannot read scan requests", extra={"error": str(exc)})
            return
        for request in to_run:
            logger.info("scan requested", extra={"stack": request.stack, "request_id": request.id})
            self.submit(request.stack, Trigger.REQUEST, request.requested_by, request.checks)

    # -- status ---------------------------------------------------------------------

    def _publish_status(self) -> None:
        running = self.running()
        with self._lock:
            states = list(self._states.values())
        jobs = [job for job in self.scheduler.get_jobs() if job.next_run is not None]
        next_job = min(jobs, key=lambda job: job.next_run, default=None)  # type: ignore[arg-type, return-value]
        upcoming = ""
        if next_job is not None and next_job.next_run is not None:
            tag = next(iter(next_job.tags), "?")
            upcoming = f"; next: {tag} at {next_job.next_run:%H:%M:%S}"
        status = (
            f"{len(self.config.stacks)} stacks, {len(running)} running, "
            f"{states.count(StackState.DRIFTED)} drifted, "
            f"{states.count(StackState.CHANGES_PENDING)} pending, "
            f"{states.count(StackState.FAILED)} failing{upcoming}"
        )
        if status != self._last_status:
            self.notifier.status(status)
            self._last_status = status
