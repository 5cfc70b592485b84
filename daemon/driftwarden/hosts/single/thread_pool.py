"""The worker pool: queued scans run on `max_parallel` threads, never more at once and
never two of one stack; each check in turn runs in its own process group."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from driftwarden.domain.model import Check, Trigger
from driftwarden.hosts.bookkeeping import QueuedScan, ScanQueue


class WorkerPool:
    """`scan` runs each queued scan on a worker thread. When one ends, `ended` is called
    with its stack before the next is dispatched (a request waiting for that stack can
    then go before the queue). Once `stopping` is set nothing more starts."""

    def __init__(
        self,
        max_parallel: int,
        scan: Callable[[QueuedScan], None],
        ended: Callable[[str], None],
        stopping: threading.Event,
    ) -> None:
        self.max_parallel = max_parallel
        self._scan = scan
        self._ended = ended
        self._stopping = stopping
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="scan")
        self._lock = threading.RLock()  # a done-callback may run inside dispatch()
        self._queue = ScanQueue()
        self._running: dict[str, Future[None]] = {}
        self._background: Future[None] | None = None

    def offer(
        self, name: str, trigger: Trigger, actor: str, checks: Sequence[Check] | None
    ) -> bool:
        """Queue a scan of `name`; False (skipped) when it is queued or running already."""
        with self._lock:
            return self._queue.offer(name, trigger, actor, checks,
                                     running=name in self._running)  # fmt: skip

    def dispatch(self) -> None:
        """Start queued scans while fewer than max_parallel run: never more engines."""
        with self._lock:
            while len(self._queue) and len(self._running) < self.max_parallel:
                if self._stopping.is_set():
                    self._queue.clear()
                    return
                item = self._queue.pop()
                if item is None:
                    return
                future = self._pool.submit(self._scan, item)
                self._running[item.name] = future
                future.add_done_callback(functools.partial(self._done, item.name))

    def _done(self, name: str, _future: Future[None]) -> None:
        with self._lock:
            self._running.pop(name, None)
        self._ended(name)
        self.dispatch()

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def run_in_background(self, job: Callable[[], None]) -> None:
        """`job` on a worker, unless the previous one is still at it. It is not a scan (no
        stack is busy), and like a scan it is owned: a shutdown waits for it or cancels it."""
        with self._lock:
            if self._background is None or self._background.done():
                self._background = self._pool.submit(job)

    def shutdown(self) -> None:
        """Cancel what has not started, wait for what runs (told to stop by `stopping`)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
