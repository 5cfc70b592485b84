#!/usr/bin/env python3
"""What the record of trust costs: the state audit per ingested update, and how fast an
auditor checks the signed digests.

State audit: stacks/local-demo deployed into a scratch file backend with the real CLI,
then U more updates (each changes the program's config) and one `pulumi refresh` that
takes out-of-band drift in. Timed in-process, as a scan runs it: the first audit of the
whole history (per update), an audit with nothing new (what every scan pays), the
history ingestion it rides on, and one `pulumi stack export` (what a non-file backend
pays per scan instead).

Digests: a SQLite store of N audit events with a signed digest every D events; events/s
of `audit verify --public-key` (from the store and from a native export) beside the
HMAC chain's own `audit verify`, and the cost of signing one digest.

    .venv/bin/python bench/audit_trust.py [--updates U] [--events N] [--digest-every D]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from demo_stack import deploy_demo
from driftwarden.config import load_config
from driftwarden.service.runtime import Runtime
from driftwarden.service.scan.history import ingest_history
from driftwarden.service.scan.state_audit import audit_state
from driftwarden.store.db import open_store
from driftwarden.store.digest_check import read_native_export, verify_digests
from driftwarden.store.digests import append_digest, store_events
from driftwarden.store.export import export_events
from driftwarden.system.signing import generate_key_pair, load_public_key


def state_audit(updates: int) -> None:
    with tempfile.TemporaryDirectory(prefix="dw-bench-") as scratch:
        demo = deploy_demo(Path(scratch))
        for n in range(updates):
            demo.pulumi("config", "set", "port", str(9000 + n))
            demo.pulumi("up", "--yes", "--skip-preview")
        (demo.files / "motd.txt").write_text("HACKED\n")
        (demo.files / "app" / "settings.ini").chmod(0o666)
        demo.pulumi("refresh", "--yes", "--skip-preview")
        config = load_config(demo.config_path)
        version = demo.engine.version
        total = updates + 2  # the first up, the updates, the refresh

        runtime = Runtime.open(config)
        stack = config.stacks[0]
        started = time.perf_counter()
        ingest_history(runtime, stack, None)
        ingest = time.perf_counter() - started
        started = time.perf_counter()
        audited = audit_state(runtime, stack)
        first = time.perf_counter() - started
        idle = []
        for _ in range(5):
            started = time.perf_counter()
            audit_state(runtime, stack)
            idle.append(time.perf_counter() - started)
        exports = []
        for _ in range(3):
            started = time.perf_counter()
            runtime.stack_engine(stack, None).export()
            exports.append(time.perf_counter() - started)
        runtime.close_engines()
    assert audited == total, f"audited {audited} changes of the state, expected {total}"
    print(f"state audit: {total} updates (stack history of stacks/local-demo), pulumi v{version}")
    print("| what | time | per update |")
    print("|---|---|---|")
    print(
        f"| history ingestion (engine: `pulumi stack history`) | {ingest * 1000:.0f} ms | "
        f"{ingest / total * 1000:.1f} ms |"
    )
    print(
        f"| first state audit (every checkpoint, rated, stored) | {first * 1000:.0f} ms | "
        f"{first / total * 1000:.1f} ms |"
    )
    print(
        f"| state audit, nothing new (each scan, file backend) | "
        f"{statistics.median(idle) * 1000:.1f} ms | |"
    )
    print(
        f"| one `pulumi stack export` (each scan, other backends) | "
        f"{statistics.median(exports) * 1000:.0f} ms | |"
    )


def digests(events: int, every: int) -> None:
    with tempfile.TemporaryDirectory(prefix="dw-bench-") as scratch:
        root = Path(scratch)
        store = open_store(f"sqlite:///{root / 'bench.db'}", os.urandom(32))
        key = generate_key_pair(root / "key")
        public = load_public_key(root / "key.pub")
        signing: list[float] = []
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        written = 0
        while written < events:
            batch = min(every, events - written)
            with store.write() as session:
                for n in range(batch):
                    store.audit.append(
                        session,
                        actor="bench@host",
                        action="finding.opened",
                        stack="demo",
                        operation_id=f"op-{written + n}",
                        outcome=None,
                        details={
                            "urn": f"urn:pulumi:dev::demo::x::r{n}",
                            "path": "spec.x",
                            "expected": n,
                            "actual": n + 1,
                        },
                        time=t0 + timedelta(seconds=written + n),
                    )
            written += batch
            started = time.perf_counter()
            with store.write() as session:
                append_digest(session, store.audit, key)
            signing.append(time.perf_counter() - started)
        total = store.audit.head(store)[0]

        started = time.perf_counter()
        report = verify_digests(store_events(store), [public])
        from_store = time.perf_counter() - started
        assert report.ok, report
        out = io.StringIO()
        export_events(store, out, "native")
        started = time.perf_counter()
        offline = verify_digests(read_native_export(io.StringIO(out.getvalue())), [public])
        from_export = time.perf_counter() - started
        assert offline.ok, offline
        started = time.perf_counter()
        hmac = store.audit.verify(store)
        with_key = time.perf_counter() - started
        assert hmac.ok
        store.close()
    print(f"\ndigests: {total} events, a digest every {every} ({report.digests} digests)")
    print("| check | time | events/s |")
    print("|---|---|---|")
    for what, seconds in (
        ("audit verify --public-key (store)", from_store),
        ("audit verify --public-key --export (native file)", from_export),
        ("audit verify (HMAC, the audit key)", with_key),
    ):
        print(f"| {what} | {seconds:.2f} s | {total / seconds:,.0f} |")
    print(
        f"signing one digest of {every} events: median {statistics.median(signing) * 1000:.1f} ms"
    )
    print(f"ratio public-key/HMAC verify time: {from_store / with_key:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--digest-every", type=int, default=5_000)
    args = parser.parse_args()
    state_audit(args.updates)
    digests(args.events, args.digest_every)


if __name__ == "__main__":
    main()
