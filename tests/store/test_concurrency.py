"""Processes racing on one store, on SQLite and on PostgreSQL: four append 1,000 events
each at the same time and the chain comes out whole (no fork, no gap); four claim the
same outbox messages and scan requests and each row is taken once."""

from __future__ import annotations

import multiprocessing
import time
from datetime import timedelta
from multiprocessing.synchronize import Barrier as BarrierType
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import select as sm_select

from driftwarden.store.db import Store, open_store
from driftwarden.store.models import AuditEvent, Notification, ScanRequest
from driftwarden.store.outbox import claim as claim_notification
from driftwarden.store.outbox import enqueue
from driftwarden.store.requests import claim as claim_request
from driftwarden.store.requests import request_scan

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


CLAIMERS = 4
CLAIMED_ROWS = 150


def _claimer(
    url: str,
    key: bytes,
    claimer: int,
    start: float,
    ids: list[str],
    out: str,
    all_done: BarrierType,
) -> None:
    store = open_store(url, key, migrate=False)
    won: list[str] = []
    try:
        while time.time() < start:
            time.sleep(0.001)
        for notification_id, request_id in zip(ids[::2], ids[1::2], strict=True):
            with store.write() as session:
                message = session.get(Notification, notification_id)
                assert message is not None
                if claim_notification(session, message, lease=timedelta(minutes=5)):
                    won.append(notification_id)
            with store.write() as session:
                if claim_request(session, request_id, f"claimer-{claimer}"):
                    won.append(request_id)
    finally:
        store.close()
    Path(out).write_text("\n".join(won))
    # Stay alive until every claimer is done: a claim whose claimant died is free to
    # take over (on purpose), and on a loaded machine one claimer may finish first.
    all_done.wait(timeout=120)


def test_concurrent_senders_and_daemons_claim_each_row_once(
    store: Store, store_url: str, audit_key: bytes, tmp_path: Path
) -> None:
    """Outbox messages and scan requests: however many processes race for them, each
    is taken by exactly one (on PostgreSQL that needs the conditional UPDATE)."""
    ids: list[str] = []
    with store.write() as session:
        for n in range(CLAIMED_ROWS):
            message = enqueue(session, key=f"k-{n}", target="hook", event="drift.new",
                              title="t", markdown="m", text="t")  # fmt: skip
            assert message is not None
            request = request_scan(session, store.audit, stack="demo", checks=None, actor="t@h")
            ids += [message.id, request.id]
    context = multiprocessing.get_context("spawn")
    start = time.time() + 1.5
    outs = [tmp_path / f"claimer-{n}.txt" for n in range(CLAIMERS)]
    all_done = context.Barrier(CLAIMERS)
    claimers = [
        context.Process(
            target=_claimer, args=(store_url, audit_key, n, start, ids, str(out), all_done)
        )
        for n, out in enumerate(outs)
    ]
    for process in claimers:
        process.start()
    for process in claimers:
        process.join(timeout=120)
    assert [process.exitcode for process in claimers] == [0] * CLAIMERS
    won = [line for out in outs for line in out.read_text().splitlines()]
    assert sorted(won) == sorted(ids), "every row claimed exactly once"
    with store.read() as session:
        claimed_by = {r.id: r.claimed_by for r in session.exec(sm_select(ScanRequest)).all()}
    for n, out in enumerate(outs):
        for row_id in out.read_text().splitlines():
            if row_id.startswith("rq-"):
                assert claimed_by[row_id] == f"claimer-{n}"
