"""The daemon: the loop on the main thread, and the parts it is made of (the worker
pool, the schedules, the outbox sender, skip streaks, requests and the systemd status)."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from driftwarden.config import Config, StackConfig
from driftwarden.domain.errors import DriftwardenError, UsageError
from driftwarden.domain.model import Check, CheckStatus, ErrorKind, Trigger
from driftwarden.hosts.bookkeeping import QueuedScan
from driftwarden.hosts.lifecycle import reload_config
from driftwarden.hosts.requests import claim_requests, requested_checks
from driftwarden.hosts.scheduling import Schedules
from driftwarden.hosts.sdnotify import Notifier
from driftwarden.hosts.sender import OutboxSender
from driftwarden.hosts.single.status import DaemonStatus
from driftwarden.hosts.single.thread_pool import WorkerPool
from driftwarden.hosts.skips import SkipRecorder
from driftwarden.service.logs import logger
from driftwarden.service.preflight import load_service_config
from driftwarden.service.runtime import DAEMON_ACTOR, Runtime
from driftwarden.service.scan.check import CheckResult
from driftwarden.service.scan.flow import scan_stack
from driftwarden.service.scan.history import ingest_all_history
from driftwarden.service.sources.watch import AuditWatch
from driftwarden.service.trust.digests import DigestSchedule
from driftwarden.service.trust.forward import Forwarder

REQUEST_POLL_SECONDS = 0.5


class Daemon:
    def __init__(self, config_path: Path, notifier: Notifier | None = None) -> None:
        self.config_path = config_path
        self.notifier = notifier or Notifier.from_environment()
        config = load_service_config(config_path)
        if config.daemon.mode == "distributed":
            raise UsageError(
                f'{config_path}: [daemon] mode is "distributed": the fleet\'s checks run on '
                "`driftwarden worker` processes (one per host), not on `run`",
                hint="start `driftwarden worker` (systemd/driftwarden-worker.service), or "
                'set mode = "single"',
            )
        self.runtime = Runtime.open(config, actor=DAEMON_ACTOR)
        self.runtime.ensure_plugins()
        self.stopping = threading.Event()
        self.reload_requested = threading.Event()
        self.workers = WorkerPool(config.daemon.max_parallel, self._scan, self._scan_ended,
                                  self.stopping)  # fmt: skip
        self.schedules = Schedules(self.runtime, self.submit, self._ingest_history)
        self.scheduler = self.schedules.jobs  # the `schedule` jobs the loop runs
        self.sender = OutboxSender(self.runtime, self.stopping)
        self.watch = AuditWatch(self.runtime, self.stopping)
        self.digests = DigestSchedule(self.runtime, self.stopping)
        self.forwarder = Forwarder(self.runtime, self.stopping)
        self.skips = SkipRecorder(self.runtime.store)
        self.status = DaemonStatus(self.runtime, self.notifier)
        self._claimer = f"daemon@{socket.gethostname()}:{os.getpid()}"
        self._last_tick = time.monotonic()
        self._signals: list[int] = []  # from the signal handlers, for the loop

    def heartbeat(self) -> float:
        """`time.monotonic()` when the loop last went round: `/healthz` says a loop that
        stopped going round is stuck."""
        return self._last_tick

    @property
    def config(self) -> Config:
        """The running config (a reload replaces it)."""
        return self.runtime.config

    # -- the loop -------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True) -> int:
        if install_signal_handlers:
            self._install_signal_handlers()
        try:
            self._start()
            self._loop()
        finally:
            self.stopping.set()  # also after a crash: no thread may outlive the loop
            self._shutdown()
        return 0

    def _start(self) -> None:
        self.status.load()
        self.schedules.start()
        logger.info(
            "daemon started",
            extra={
                "stacks": len(self.config.stacks),
                "max_parallel": self.config.daemon.max_parallel,
            },
        )
        self.sender.start()
        self.watch.start()
        self.digests.start()
        self.forwarder.start()
        self.notifier.ready()

    def _loop(self) -> None:
        next_request_poll = 0.0
        last_ping = 0.0
        while not self.stopping.is_set():
            self._last_tick = time.monotonic()
            self._handle_signals()
            if self.stopping.is_set():
                break
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            self.scheduler.run_pending()
            now = time.monotonic()
            if now >= next_request_poll:
                self._claim_requests()
                next_request_poll = now + REQUEST_POLL_SECONDS
            self.schedules.retry_failed(now)
            self.workers.dispatch()
            self.runtime.retire_idle_workers()
            interval = self.notifier.watchdog_interval
            if interval is not None and now - last_ping >= interval:
                # Pinged from the loop itself: a stuck loop stops the pings.
                self.notifier.watchdog()
                last_ping = now
            self.status.publish(len(self.running()), self.schedules.upcoming())
            idle = self.scheduler.idle_seconds
            wait = 0.5 if idle is None else max(0.05, min(0.5, idle))
            if interval is not None:
                wait = min(wait, interval / 2)
            self.stopping.wait(wait)
            self._handle_signals()

    def _shutdown(self) -> None:
        """Every thread the daemon started ends here: the workers (running checks are
        interrupted, the history ingest cancelled), the sender, the digests, the
        forwarder."""
        logger.info("stopping: interrupting running checks", extra={"running": self.running()})
        self.notifier.stopping()
        self.workers.shutdown()
        self.runtime.close_engines()
        self.watch.close()
        self.sender.close()
        self.digests.close()  # signs what the last scans and deliveries appended
        self.forwarder.close()  # and sends it, digest included, when it can
        logger.info("daemon stopped")

    def stop(self) -> None:
        self.stopping.set()

    # -- signals and reload ---------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        def note(signum: int, _frame: FrameType | None) -> None:
            # Only a list append here, which takes no lock: a handler runs on the main
            # thread between two bytecodes, and Event.set() (or logging) would wait forever
            # for a lock that the interrupted code, e.g. the loop's own stopping.wait(),
            # holds. Seen once: SIGTERM landed there and the daemon never stopped.
            self._signals.append(signum)

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, note)

    def _handle_signals(self) -> None:
        """The signals that arrived since the last tick (the loop's wait is at most 0.5 s)."""
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGHUP:
                self.reload_requested.set()
                continue
            logger.info("signal received", extra={"signal": signal.Signals(signum).name})
            self.stopping.set()

    def reload(self) -> None:
        self.notifier.reloading()
        if reload_config(self.runtime, self.config_path) is not None:
            self.schedules.restart()
        self.notifier.ready()

    # -- scans ----------------------------------------------------------------------

    def submit(
        self,
        name: str,
        trigger: Trigger,
        actor: str = DAEMON_ACTOR,
        checks: Sequence[Check] | None = None,
    ) -> bool:
        """Queue a scan of `name`; a stack already queued or running is skipped (recorded)."""
        if self.stopping.is_set():
            return False
        queued = self.workers.offer(name, trigger, actor, checks)
        if not queued:
            self.skips.skipped(name, trigger)
        self.workers.dispatch()
        return queued

    def running(self) -> list[str]:
        return self.workers.running()

    def _scan(self, item: QueuedScan) -> None:
        """One queued scan, on a worker thread."""
        try:
            stack = self.config.stack(item.name)
        except DriftwardenError:
            return  # removed by a reload since it was queued
        selected = list(item.checks) if item.checks else None
        try:
            done = scan_stack(self.runtime, stack, selected, trigger=item.trigger,
                              actor=item.actor, cancel=self.stopping)  # fmt: skip
        except Exception:
            logger.exception("scan crashed", extra={"stack": item.name})
            self._record_outcome(stack, failed=True)
            return
        if done.results:
            failed = any(r.status is CheckStatus.FAILED for r in done.results)
            self._record_outcome(stack, failed=failed, results=done.results)

    def _record_outcome(
        self, stack: StackConfig, *, failed: bool, results: Sequence[CheckResult] = ()
    ) -> None:
        if failed and any(r.error_kind is ErrorKind.CANCELLED for r in results):
            return  # shutting down: a stop is nobody's failure
        self.schedules.scan_finished(stack, failed=failed, now=time.monotonic())
        with contextlib.suppress(DriftwardenError):
            self.status.load([stack.name])

    def _scan_ended(self, name: str) -> None:
        """A worker is free: its stack's skip streak ends, and a request waiting for the
        stack goes before the queue."""
        self.skips.scan_ended(name)
        if not self.stopping.is_set():
            self._claim_requests()

    def _ingest_history(self) -> None:
        """At least hourly, every stack's history, on the worker pool: the loop never waits
        on the engine."""
        self.workers.run_in_background(
            functools.partial(ingest_all_history, self.runtime, self.stopping)
        )

    def _claim_requests(self) -> None:
        for request in claim_requests(self.runtime, self._claimer, self.running):
            logger.info("scan requested", extra={"stack": request.stack, "request_id": request.id})
            self.submit(request.stack, Trigger.REQUEST, request.requested_by,
                        requested_checks(request))  # fmt: skip
