"""Four processes, each with its own Store, append 1,000 events each at the same time:
the chain must come out whole (no fork, no gap) on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing
import time

from sqlalchemy import func, select

from driftwarden.store.db import Store, open_store
from driftwarden.store.models import AuditEvent

WRITERS = 4
EVENTS_EACH = 1000
EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]


def _writer(url: str, key: bytes, writer: int, start: float) -> None:
    store = open_store(url, key)  # migrates too: all four check the schema at once
    try:
        while time.time() < start:  # start together, for the most contention
            time.sleep(0.001)
        for n in range(EVENTS_EACH):
            with store.write() as session:
                store.audit.append(
                    session, actor=f"writer-{writer}", action="test.concurrent",
                    details={"writer": writer, "n": n},
                )  # fmt: skip
    finally:
        store.close()


def test_concurrent_processes_never_fork_the_chain(
    store: Store, store_url: str, audit_key: bytes
) -> None:
    context = multiprocessing.get_context("spawn")  # no inherited connections or locks
    start = time.time() + 1.5
    writers = [
        context.Process(target=_writer, args=(store_url, audit_key, n, start))
        for n in range(WRITERS)
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
    assert [process.exitcode for process in writers] == [0] * WRITERS

    total = WRITERS * EVENTS_EACH
    began = time.perf_counter()
    report = store.audit.verify(store)
    elapsed = time.perf_counter() - began
    assert report.ok, report
    assert report.events_checked == report.head_seq == total
    with store.engine.connect() as connection:
        seqs = connection.execute(select(EVENTS.c.seq).order_by(EVENTS.c.seq)).scalars()
        assert list(seqs) == list(range(1, total + 1))
        counts = connection.execute(select(EVENTS.c.actor, func.count()).group_by(EVENTS.c.actor))
        per_writer: dict[str, int] = dict(counts.all())
    assert per_writer == {f"writer-{n}": EVENTS_EACH for n in range(WRITERS)}
    print(f"verify {store.dialect}: {total / elapsed:,.0f} events/s")
