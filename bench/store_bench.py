#!/usr/bin/env python3
"""The audit store at fleet scale: `status`, `history` and `audit verify` on a year of data.

For each database (a SQLite file in a temporary directory; a real PostgreSQL server
started in a temporary directory the way the store tests start it), creates a fresh
migrated store, seeds it with bulk inserts — operations spread over N stacks and the past
year, findings (most resolved), and a valid HMAC audit chain — then times, as the median
of 5 runs after 1 warm-up:

- `stack_summaries` for every stack and both checks (what `driftwarden status` runs),
- `history` (`--limit 50`), fleet-wide and for one stack,
- `AuditChain.verify` over every event (what `driftwarden audit verify` runs),

and prints each against its target. A missed target is printed, not failed; a chain that
does not verify exits 1 (the seeding is wrong, so every figure is suspect).

    .venv/bin/python bench/store_bench.py [--operations N] [--findings N] [--stacks N]
        [--audit-events N] [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
from psycopg import sql

from driftwarden.store.audit import (
    GENESIS_HASH,
    canonical_event,
    canonical_json,
    iso_utc,
    load_audit_key,
)
from driftwarden.store.db import Store, default_store_url, open_store
from driftwarden.store.models import AuditEvent, Finding, Operation
from driftwarden.store.queries import history, stack_summaries

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.pgserver: the test suite's PostgreSQL server

from tests.pgserver import (  # noqa: E402
    PostgresUnavailableError,
    create_database,
    running_postgres,
)

AUDIT_KEY = bytes(range(32))
KINDS = ("drift", "code")
BATCH = 10_000
RUNS, WARMUPS = 5, 1
QUERY_TARGET_MS = 100.0
VERIFY_TARGET_EPS = 50_000.0
OPEN_SHARE = 0.05  # of the findings: ~5,000 of 100,000 are open
YEAR = timedelta(days=365)

ENVS = ("dev", "staging", "prod")
RESOURCE_TYPES = (
    "aws:s3/bucketV2:BucketV2",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:iam/role:Role",
    "aws:lambda/function:Function",
    "aws:rds/instance:Instance",
    "command:local:Command",
)
PATHS = ("tags.owner", "ingress[0].cidrBlocks[0]", "environment.variables.LOG_LEVEL",
         "instanceClass", "versioning.enabled", "content", "")  # fmt: skip
ERRORS = (
    ("engine", "error: update failed: 1 error occurred: AccessDenied: not authorized"),
    ("engine", "error: the stack is currently locked by 1 lock(s)"),
    ("timeout", "the check did not finish within 1800 s"),
    ("plugin", "error: could not load plugin for aws provider"),
)


@dataclass(frozen=True)
class Sizes:
    operations: int
    findings: int
    stacks: int
    audit_events: int

    @property
    def stack_names(self) -> list[str]:
        return [f"stack-{i:03d}" for i in range(self.stacks)]


@dataclass
class Figure:
    database: str
    name: str
    runs: list[float]
    unit: str  # "ms" (lower is better) or "events/s" (higher is better)
    target: float

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def ratio(self) -> float:
        return self.median / self.target

    @property
    def meets(self) -> bool:
        return self.median < self.target if self.unit == "ms" else self.median > self.target


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)
    broken_chains: list[str] = field(default_factory=list)


# --- the data --------------------------------------------------------------------------


@dataclass
class Fleet:
    """What the generators share: stack attributes and each stack's operation ids."""

    sizes: Sizes
    now: datetime
    rng: random.Random
    op_ids: dict[str, list[str]] = field(default_factory=dict)

    def project(self, stack_index: int) -> str:
        return f"proj-{stack_index % 40:02d}"

    def pulumi_stack(self, stack_index: int) -> str:
        return ENVS[stack_index % len(ENVS)]

    def urn(self, stack_index: int, resource: int) -> str:
        type_ = RESOURCE_TYPES[resource % len(RESOURCE_TYPES)]
        return (
            f"urn:pulumi:{self.pulumi_stack(stack_index)}::{self.project(stack_index)}::"
            f"{type_}::res-{resource:04d}"
        )


def operation_rows(fleet: Fleet) -> Iterator[dict[str, Any]]:
    """Scans spread evenly over the past year (random stacks), newest still running."""
    rng, names, n = fleet.rng, fleet.sizes.stack_names, fleet.sizes.operations
    start = fleet.now - YEAR
    step = YEAR.total_seconds() / max(n, 1)
    recent = fleet.now - timedelta(minutes=15)
    fleet.op_ids = {name: [] for name in names}
    for j in range(n):
        stack_index = rng.randrange(len(names))
        stack = names[stack_index]
        kind = "drift" if rng.random() < 0.6 else "code"
        started = start + timedelta(seconds=(j + rng.random()) * step)
        op_id = f"op-{started:%Y%m%dT%H%M%SZ}-{j:08x}"
        fleet.op_ids[stack].append(op_id)
        r = rng.random()
        trigger, actor = (
            ("schedule", "daemon") if r < 0.85
            else ("cli", f"user{j % 17}@ops-{j % 5}") if r < 0.95
            else ("request", f"ci@runner-{j % 9}")
        )  # fmt: skip
        row: dict[str, Any] = {
            "id": op_id, "stack": stack, "project": fleet.project(stack_index),
            "pulumi_stack": fleet.pulumi_stack(stack_index), "kind": kind,
            "trigger": trigger, "actor": actor, "status": "running", "outcome": None,
            "started_at": started, "finished_at": None, "duration_ms": None,
            "resource_changes": 0, "property_changes": 0, "error": None,
            "error_kind": None, "cli_version": None, "host": f"dw-{stack_index % 3}",
            "pid": 1000 + j % 30000,
        }  # fmt: skip
        r = rng.random()
        if started > recent and r < 0.3:
            yield row  # still running
            continue
        duration = rng.randint(2_000, 120_000)
        row["finished_at"] = started + timedelta(milliseconds=duration)
        row["duration_ms"] = duration
        row["cli_version"] = "3.259.0"
        if r < 0.94:
            row["status"] = "succeeded"
            if rng.random() < 0.25:
                row["outcome"] = "drifted" if kind == "drift" else "changes_pending"
                row["resource_changes"] = rng.randint(1, 5)
                row["property_changes"] = row["resource_changes"] + rng.randint(0, 7)
            else:
                row["outcome"] = "in_sync"
        else:
            row["status"] = ("failed" if r < 0.975 else "timed_out" if r < 0.99
                             else "cancelled" if r < 0.995 else "interrupted")  # fmt: skip
            row["outcome"] = "error"
            row["error_kind"], row["error"] = ERRORS[j % len(ERRORS)]
        yield row


def finding_rows(fleet: Fleet) -> Iterator[dict[str, Any]]:
    """~5% open (unique per stack, check, urn, path, as ux_findings_open demands), the
    rest resolved (the same property may have drifted and been fixed many times)."""
    rng, names, n = fleet.rng, fleet.sizes.stack_names, fleet.sizes.findings
    n_open = round(n * OPEN_SHARE)
    for i in range(n):
        if i < n_open:
            stack_index, resource = i % len(names), i // len(names)
            check = KINDS[resource % 2]
            path = PATHS[resource % len(PATHS)]
        else:
            stack_index, resource = rng.randrange(len(names)), rng.randrange(300)
            check = KINDS[rng.random() < 0.4]
            path = rng.choice(PATHS)
        stack = names[stack_index]
        ids = fleet.op_ids.get(stack) or ["op-none"]
        first = rng.randrange(len(ids))
        last = rng.randrange(first, len(ids))
        first_seen = fleet.now - YEAR + timedelta(seconds=rng.random() * YEAR.total_seconds())
        last_seen = first_seen + timedelta(hours=rng.random() * 24 * 14)
        secret = path == "environment.variables.LOG_LEVEL" and resource % 3 == 0
        yield {
            "id": f"fd-{i:016x}", "stack": stack, "check": check,
            "urn": fleet.urn(stack_index, resource),
            "type": RESOURCE_TYPES[resource % len(RESOURCE_TYPES)],
            "change": "delete" if path == "" else "update", "path": path,
            "kind": "delete" if path == "" else "update",
            "expected": "[secret]" if secret else f"value-{resource}",
            "actual": None if path == "" else "[secret]" if secret else f"live-{i % 97}",
            "secret": secret, "source": "diff", "severity": None, "rule": None,
            "attribution": None, "approval_requested_at": None,
            "first_seen": first_seen, "last_seen": last_seen,
            "occurrences": rng.randint(1, 200),
            "resolved_at": (None if i < n_open
                            else last_seen + timedelta(minutes=rng.randint(5, 600))),
            "ended_as": None if i < n_open else "resolved", "accepted_by": None,
            "first_operation_id": ids[first], "last_operation_id": ids[last],
        }  # fmt: skip


def audit_rows(fleet: Fleet, store: Store) -> Iterator[dict[str, Any]]:
    """A valid chain, hashed exactly as `AuditChain.append` hashes (same canonical form,
    same MAC), in seq order with times increasing over the past year."""
    rng, names, n = fleet.rng, fleet.sizes.stack_names, fleet.sizes.audit_events
    mac = store.audit._mac  # the chain's own HMAC: the bench must not drift from it
    start = fleet.now - YEAR
    step = YEAR.total_seconds() / max(n, 1)
    prev_hash = GENESIS_HASH
    for seq in range(1, n + 1):
        when = start + timedelta(seconds=(seq - 1 + rng.random()) * step)
        stack_index = rng.randrange(len(names))
        stack = names[stack_index]
        ids = fleet.op_ids.get(stack) or ["op-none"]
        op_id = ids[rng.randrange(len(ids))]
        r = rng.random()
        actor = "daemon" if r < 0.9 else f"user{seq % 17}@ops-{seq % 5}"
        outcome: str | None
        if r < 0.4:
            action, outcome = "operation.started", None
            details: dict[str, Any] = {
                "kind": KINDS[seq % 2], "trigger": "schedule",
                "project": fleet.project(stack_index),
                "pulumi_stack": fleet.pulumi_stack(stack_index),
            }  # fmt: skip
        elif r < 0.8:
            action, outcome = "operation.finished", "in_sync" if r < 0.7 else "drifted"
            details = {
                "kind": KINDS[seq % 2], "status": "succeeded", "outcome": outcome,
                "resource_changes": 0 if outcome == "in_sync" else 2,
                "property_changes": 0 if outcome == "in_sync" else 3,
                "duration_ms": rng.randint(2_000, 120_000), "error": None,
            }  # fmt: skip
        else:
            kind = "opened" if r < 0.9 else "resolved" if r < 0.97 else "changed"
            action, outcome = f"finding.{kind}", kind
            resource = rng.randrange(300)
            details = {
                "finding_id": f"fd-{seq:016x}", "check": "drift",
                "urn": fleet.urn(stack_index, resource), "path": "tags.owner",
                "expected": "platform", "actual": "someone-else", "secret": False,
            }  # fmt: skip
        details_json = canonical_json(details)
        canonical = canonical_event(
            seq, iso_utc(when), actor, action, stack, op_id, outcome, details_json
        )
        hash_ = mac(prev_hash, canonical)
        yield {
            "seq": seq, "time": when, "actor": actor, "action": action, "stack": stack,
            "operation_id": op_id, "outcome": outcome, "details": details,
            "prev_hash": prev_hash, "hash": hash_,
        }  # fmt: skip
        prev_hash = hash_


# --- bulk loading ----------------------------------------------------------------------


def batches(rows: Iterable[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_sqlite(store: Store, table: sqlalchemy.Table, rows: Iterable[dict[str, Any]]) -> int:
    """executemany in batches, every value converted by its column type's own bind
    processor (UtcDateTime to naive UTC text, JSON through the engine's serializer):
    what a Core insert does, without its per-row bookkeeping."""
    dialect = store.engine.dialect
    columns = [column.name for column in table.columns]
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns]
    converters = [(name, process) for name, process in zip(columns, processors, strict=True)]
    statement = str(table.insert().compile(dialect=dialect))  # all columns, qmark style
    count = 0
    with store.engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        # For this bulk load only: a bigger page cache for the index inserts, no fsync.
        saved = {pragma: raw.execute(f"PRAGMA {pragma}").fetchone()[0]
                 for pragma in ("cache_size", "synchronous")}  # fmt: skip
        raw.execute("PRAGMA cache_size = -262144")
        raw.execute("PRAGMA synchronous = OFF")
        try:
            with connection.begin():
                cursor = raw.cursor()
                for batch in batches(rows):
                    cursor.executemany(
                        statement,
                        [
                            tuple(process(row[name]) if process else row[name]
                                  for name, process in converters)
                            for row in batch
                        ],
                    )  # fmt: skip
                    count += len(batch)
                cursor.close()
        finally:
            for pragma, value in saved.items():
                raw.execute(f"PRAGMA {pragma} = {value}")
    return count


def load_postgresql(store: Store, table: sqlalchemy.Table, rows: Iterable[dict[str, Any]]) -> int:
    """psycopg's COPY through the raw connection: aware datetimes go in as timestamptz,
    JSON values as canonical JSON text (what the engine's serializer writes)."""
    columns = [column.name for column in table.columns]
    json_columns = {c.name for c in table.columns if isinstance(c.type, sqlalchemy.JSON)}
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    count = 0
    with store.engine.begin() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [canonical_json(row[c]) if c in json_columns else row[c] for c in columns]
                )
                count += 1
    return count


def seeded_fleet(root: Path, sizes: Sizes) -> Path:
    """A SQLite store under root/state seeded with `sizes`, and a config naming its stacks
    (the local-demo project, hourly): a fleet of that size for the CLI and dashboard
    benches. Returns the config's path."""
    state = root / "state"
    state.mkdir(mode=0o700)
    store = open_store(default_store_url(state), load_audit_key(state))
    try:
        seed(store, sizes)
    finally:
        store.engine.dispose()
    config = root / "driftwarden.toml"
    project = REPO / "stacks" / "local-demo"
    config.write_text(f'[daemon]\nstate_dir = "{state}"\n\n' + "".join(
        f'[[stacks]]\nname = "{name}"\nproject_dir = "{project}"\nstack = "dev"\n'
        'schedule = "every 1h"\n\n'
        for name in sizes.stack_names
    ))  # fmt: skip
    return config


def seed(store: Store, sizes: Sizes) -> None:
    fleet = Fleet(sizes, datetime.now(UTC), random.Random(20261123))
    load = load_sqlite if store.dialect == "sqlite" else load_postgresql
    total = time.perf_counter()
    tables: list[sqlalchemy.Table] = [
        Operation.__table__,  # type: ignore[attr-defined]
        Finding.__table__,  # type: ignore[attr-defined]
        AuditEvent.__table__,  # type: ignore[attr-defined]
    ]
    generators = (operation_rows(fleet), finding_rows(fleet), audit_rows(fleet, store))
    for table, rows in zip(tables, generators, strict=True):
        started = time.perf_counter()
        count = load(store, table, rows)
        print(f"  seeded {count:>9,} {table.name:<12} in {time.perf_counter() - started:6.1f} s")
    started = time.perf_counter()
    if store.dialect == "postgresql":
        # What autovacuum would have done by the time anyone runs `status`.
        autocommit = store.engine.execution_options(isolation_level="AUTOCOMMIT")
        with autocommit.connect() as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
        print(f"  VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")
    else:
        # The daemon never runs ANALYZE: the planner works without statistics, as in use.
        with store.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        print(f"  WAL checkpoint in {time.perf_counter() - started:.1f} s")
    print(f"  seeding took {time.perf_counter() - total:.1f} s")


# --- measuring -------------------------------------------------------------------------


def measure(fn: Callable[[], Any]) -> tuple[list[float], Any]:
    """Seconds of each of RUNS runs after WARMUPS warm-ups, and the last result."""
    result: Any = None
    for _ in range(WARMUPS):
        result = fn()
    runs = []
    for _ in range(RUNS):
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return runs, result


def query_figure(database: str, name: str, fn: Callable[[], Any]) -> tuple[Figure, Any]:
    runs, result = measure(fn)
    figure = Figure(database, name, [r * 1000 for r in runs], "ms", QUERY_TARGET_MS)
    shown = " ".join(f"{r:.1f}" for r in figure.runs)
    print(f"  {name:<34} runs (ms): {shown}   median {figure.median:.1f} ms")
    return figure, result


def bench_store(database: str, store: Store, sizes: Sizes, results: Results) -> None:
    names = sizes.stack_names

    def status() -> Any:
        with store.read() as session:
            return stack_summaries(session, names, KINDS)

    def fleet_history() -> Any:
        with store.read() as session:
            return history(session, limit=50)

    one_stack = names[min(123, len(names) - 1)]

    def stack_history() -> Any:
        with store.read() as session:
            return history(session, stack=one_stack, limit=50)

    figure, summaries = query_figure(database, f"status ({len(names)} stacks)", status)
    results.figures.append(figure)
    open_total = sum(summary.open_findings for summary in summaries)
    scanned = sum(1 for summary in summaries if summary.latest)
    print(f"    ({scanned} stacks with a latest operation, {open_total:,} open findings)")
    figure, rows = query_figure(database, "history --limit 50", fleet_history)
    results.figures.append(figure)
    figure, rows = query_figure(database, f"history --stack {one_stack} --limit 50", stack_history)
    results.figures.append(figure)
    if rows and any(row.stack != one_stack for row in rows):
        print(f"    WARNING: history --stack {one_stack} returned other stacks' operations")

    runs, report = measure(lambda: store.audit.verify(store))
    if not report.ok or report.events_checked != sizes.audit_events:
        print(f"  AUDIT CHAIN BROKEN ({report.problem}): {report.detail} "
              f"[{report.events_checked:,} of {sizes.audit_events:,} events verified]")  # fmt: skip
        results.broken_chains.append(database)
        return
    rates = [report.events_checked / r for r in runs]
    figure = Figure(database, f"audit verify ({report.events_checked:,} events)", rates,
                    "events/s", VERIFY_TARGET_EPS)  # fmt: skip
    results.figures.append(figure)
    shown = " ".join(f"{r:,.0f}" for r in rates)
    print(f"  {'audit verify':<34} runs (events/s): {shown}   median {figure.median:,.0f}")


def run_database(database: str, url: str, sizes: Sizes, results: Results) -> None:
    print(f"\n== {database} ==")
    store = open_store(url, AUDIT_KEY)
    try:
        seed(store, sizes)
        bench_store(database, store, sizes, results)
    finally:
        store.close()


def print_table(figures: Sequence[Figure]) -> None:
    print("\n| database   | figure                                  |          median |"
          "      target |  ratio | meets |")  # fmt: skip
    print("|------------|-----------------------------------------|----------------:|"
          "------------:|-------:|:-----:|")  # fmt: skip
    for f in figures:
        if f.unit == "ms":
            value, target = f"{f.median:,.1f} ms", f"< {f.target:,.0f} ms"
        else:
            value, target = f"{f.median:,.0f} ev/s", f"> {f.target:,.0f}"
        print(f"| {f.database:<10} | {f.name:<39} | {value:>15} | {target:>11} | "
              f"{f.ratio:6.2f} | {'yes' if f.meets else 'NO':^5} |")  # fmt: skip
    print("(ratio = median / target: below 1 is good for times, above 1 for verify)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=1_000_000)
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--stacks", type=int, default=500)
    parser.add_argument("--audit-events", type=int, default=200_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    # A plain `kill` must still stop the PostgreSQL server (the `finally`s run on exit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if min(args.operations, args.findings, args.audit_events) < 0 or args.stacks < 1:
        parser.error("sizes must be >= 0, and --stacks >= 1")
    sizes = Sizes(args.operations, args.findings, args.stacks, args.audit_events)
    print(f"store benchmark: {sizes.operations:,} operations, {sizes.findings:,} findings, "
          f"{sizes.stacks} stacks, {sizes.audit_events:,} audit events")  # fmt: skip
    results = Results()
    started = time.perf_counter()
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="dw-store-bench-") as scratch:
            run_database("sqlite", f"sqlite:///{Path(scratch) / 'driftwarden.db'}", sizes, results)
    if args.db in ("postgresql", "both"):
        try:
            with running_postgres() as server:
                url = create_database(server, "store_bench")
                run_database("postgresql", url, sizes, results)
        except PostgresUnavailableError as exc:
            print(f"error: cannot start PostgreSQL: {exc}", file=sys.stderr)
            return 2
    print_table(results.figures)
    print(f"total {time.perf_counter() - started:.0f} s")
    if results.broken_chains:
        print(f"error: the seeded audit chain does not verify on {', '.join(results.broken_chains)}"
              " (a seeding bug: the figures above are suspect)", file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
