"""The crash matrix: a worker (distributed, PostgreSQL) and, separately, the single-host
daemon (SQLite) are killed with SIGKILL at 20 points across a scan that drifts, notifies
and remediates (drift check → plan-up → up → verifying drift check, each message to a real
HTTP endpoint). The points are the crash points of driftwarden.system.failpoints (the
process kills itself there, as if its host were lost) and random moments while the engine
runs (killed from outside). Recovery is the product's own: another worker takes the dead
one's job over (or, for a crash mid-delivery, the worker restarts on its host); the daemon
is started again. After each case:

- no operation stays `running`; no engine lock or engine process is left behind;
- the case's drift is in exactly one finding (never lost, never twice), resolved by the
  remediation, and the stack is back in sync;
- every queued notification is delivered, each idempotency key seen by the receiver;
- the audit chain verifies.

The test prints the matrix (point, recovery, what the store shows) and its seed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import col, select

from driftwarden.store.audit import load_audit_key
from driftwarden.store.db import Store, default_store_url, open_store
from driftwarden.store.models import Finding, Notification, Operation
from driftwarden.system.failpoints import ENV_CRASH_AT, POINTS
from tests.cli import DRIFTWARDEN
from tests.daemon.test_daemon import processes_in
from tests.distributed.cluster import Cluster, wait_until
from tests.integration.conftest import DemoStack, Fleet
from tests.notify.conftest import HttpEndpoint

pytestmark = pytest.mark.engine

CASES = 20
MID_ENGINE = "mid-engine"  # killed from outside while the engine runs, at a random moment
IDEMPOTENCY_HEADER = "X-Driftwarden-Idempotency-Key"
# Short, so that recovery includes what a schedule does after a crash (a scan cut between
# its check and its remediation is finished by the next one), and each case's drift is
# found without a trigger.
SCHEDULE = "every 5s"


def crash_plan(seed: int) -> list[str]:
    """20 points: each crash point twice, the rest (4) random moments mid-engine; shuffled."""
    points = [*POINTS, *POINTS, *[MID_ENGINE] * (CASES - 2 * len(POINTS))]
    random.Random(seed).shuffle(points)
    return points


@dataclass
class Row:
    case: int
    point: str
    recovery: str
    interrupted: int
    reruns: int
    findings: int
    delivered: int
    redelivered: int
    seconds: float

    def line(self) -> str:
        return (f"{self.case:>4}  {self.point:<27} {self.recovery:<9} {self.interrupted:>11} "
                f"{self.reruns:>6} {self.findings:>8} {self.delivered:>9} {self.redelivered:>11} "
                f"{self.seconds:>6.1f}")  # fmt: skip


HEADER = ("case  point                       recovery  interrupted reruns findings delivered "
          "redelivered   secs")  # fmt: skip


def hook_config(endpoint: HttpEndpoint) -> str:
    return (
        '\n[remediation]\npolicy = "up"\n\n[notifications]\ndefault_targets = ["hook"]\n\n'
        f'[[targets]]\nname = "hook"\nurls = ["{endpoint.url()}"]\n'
    )


class Probe:
    """What the store and the machine show about a case."""

    def __init__(self, store: Store, stack: DemoStack, backend: Path) -> None:
        self.store = store
        self.stack = stack
        self.backend = backend

    def operations(self) -> list[Operation]:
        with self.store.read() as session:
            return list(session.exec(select(Operation).order_by(col(Operation.started_at))))

    def running(self, host: str | None = None) -> list[Operation]:
        return [op for op in self.operations()
                if op.status == "running" and (host is None or op.host == host)]  # fmt: skip

    def findings_of(self, actual: str) -> list[Finding]:
        with self.store.read() as session:
            rows = session.exec(select(Finding).where(Finding.path == "content"))
            return [f for f in rows if f.actual == actual]

    def notifications(self) -> list[Notification]:
        with self.store.read() as session:
            return list(session.exec(select(Notification)))

    def settled(self) -> bool:
        ops = self.operations()
        if not ops or any(op.status == "running" for op in ops):
            return False
        # A check the daemon's stop cancelled (its schedule had just started one) says
        # nothing: the one before it does.
        last = [op for op in ops if op.status != "cancelled"][-1]
        if (last.kind, last.status, last.outcome) != ("drift", "succeeded", "in_sync"):
            return False
        return all(n.status != "pending" for n in self.notifications())

    def engine_locks(self) -> list[Path]:
        locks = self.backend / ".pulumi" / "locks"
        return sorted(p for p in locks.rglob("*") if p.is_file()) if locks.exists() else []


@dataclass
class Victim:
    """How a matrix starts the process under test (with the crash's environment), how it
    recovers after the crash (returns how), and how it ends a case (a clean stop)."""

    host: str  # the host name its operations record
    start: Callable[[dict[str, str]], subprocess.Popen[bytes]]
    recover: Callable[[str], str]
    end_case: Callable[[], None]


def run_case(
    case: int, point: str, *, fleet: Fleet, probe: Probe, endpoint: HttpEndpoint,
    victim: Victim, rng: random.Random,
) -> Row:  # fmt: skip
    """Drift the stack, have the victim scan it until it dies at `point`, recover, check."""
    began = time.monotonic()
    before = {op.id for op in probe.operations()}
    sent_before = {n.id for n in probe.notifications() if n.status == "sent"}
    received_before = len(endpoint.requests)
    drift = f"case {case}\n"
    (probe.stack.files / "motd.txt").write_text(drift)
    env = {} if point == MID_ENGINE else {ENV_CRASH_AT: point}
    process = victim.start(env)
    trigger(fleet)  # (its schedule, every 5 s, would find the drift too)
    if point == MID_ENGINE:
        wait_until("the victim's engine run", lambda: bool(probe.running(victim.host)), 60)
        time.sleep(rng.uniform(0.05, 1.0))
        process.send_signal(signal.SIGKILL)
    try:
        code = process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"case {case}: the victim never reached {point}") from None
    assert code == -signal.SIGKILL, f"case {case}: the victim exited {code} before {point}"
    recovery = victim.recover(point)
    wait_until(f"case {case} ({point}) to settle", probe.settled, 180)
    # Stopped before looking: its schedule (every 5 s) may start a check at any moment.
    victim.end_case()
    wait_until(f"case {case} ({point}) to settle after the stop", probe.settled, 60)

    ops = [op for op in probe.operations() if op.id not in before]
    assert [op for op in ops if op.status == "running"] == []
    interrupted = [op for op in ops if op.status == "interrupted"]
    assert probe.engine_locks() == [], f"case {case}: engine locks left behind"
    assert processes_in(probe.stack.workdir) == [], f"case {case}: engine processes left"
    findings = probe.findings_of(drift)
    assert len(findings) == 1, f"case {case} ({point}): {len(findings)} findings of the drift"
    assert findings[0].resolved_at is not None
    assert (probe.stack.files / "motd.txt").read_text() == "hello\n"
    delivered = [n for n in probe.notifications() if n.status == "sent" and n.id not in sent_before]
    assert [n for n in probe.notifications() if n.status != "sent"] == []
    received = [r.headers.get(IDEMPOTENCY_HEADER) for r in endpoint.requests[received_before:]]
    missing = [n.idempotency_key for n in delivered if n.idempotency_key not in received]
    assert missing == [], f"case {case}: delivered but never received: {missing}"
    # Deduplicated by its key, the receiver saw each message once, and only those.
    assert set(received) == {n.idempotency_key for n in delivered}
    redelivered = len(received) - len(set(received))
    if point not in ("delivery.after-send", MID_ENGINE):  # sent, then killed before noting it
        assert redelivered == 0, f"case {case} ({point}): a message sent twice"
    return Row(
        case, point, recovery, len(interrupted),
        reruns=sum(op.kind == "drift" for op in ops) - 2,  # a clean case has two drift checks
        findings=len(findings), delivered=len(delivered),
        redelivered=redelivered, seconds=time.monotonic() - began,
    )  # fmt: skip


def run_matrix(
    title: str, fleet: Fleet, probe: Probe, endpoint: HttpEndpoint, victim: Victim,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The 20 cases in a random order (the seed is printed: DRIFTWARDEN_CRASH_SEED replays
    it), the matrix printed, then the audit chain verified."""
    chosen = seed()
    rows: list[Row] = []
    rng = random.Random(chosen)
    try:
        for case, point in enumerate(crash_plan(chosen), start=1):
            rows.append(run_case(case, point, fleet=fleet, probe=probe, endpoint=endpoint,
                                 victim=victim, rng=rng))  # fmt: skip
    finally:
        with capsys.disabled():
            print(f"\n{title} (seed {chosen})\n{HEADER}")
            for row in rows:
                print(row.line())
    verify_chain(fleet.config_path)
    assert sum(row.interrupted for row in rows) >= 1


def verify_chain(config: Path) -> None:
    result = subprocess.run([str(DRIFTWARDEN), "--config", str(config), "audit", "verify"],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def trigger(fleet: Fleet) -> None:
    requested = fleet.cli("trigger", "victim")
    assert requested.code == 0, requested.stderr


def seed() -> int:
    return int(os.environ.get("DRIFTWARDEN_CRASH_SEED") or time.time_ns() % 100_000)


def test_workers_killed_at_20_points_are_taken_over_with_nothing_lost_or_doubled(
    cluster: Cluster, http_endpoint: HttpEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = cluster.fleet
    # Quick takeover: a case waits for it (heartbeats every second).
    cluster.extra_config = cluster.extra_config.replace('"6s"', '"3s"')
    cluster.extra_config += hook_config(http_endpoint)
    stack = fleet.add("victim", checks=("drift",), pulumi_stack="victim", schedule=SCHEDULE)
    cluster.write_fleet_config()
    assert fleet.cli("db", "upgrade").code == 0
    store = cluster.store()
    probe = Probe(store, stack, fleet.state_dir / "backend")
    # The first, clean scan: the schedule's (a new worker scans a never-scanned stack).
    cluster.start("taker")
    wait_until("the first scan", probe.settled, 120)
    assert cluster.stop("taker") == 0

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = cluster.start("victim", env).process
        assert process is not None
        return process

    def recover(point: str) -> str:
        if point.startswith("delivery."):  # the claim is its host's: restart there
            cluster.start("victim")
            return "restart"
        cluster.start("taker")  # another host: takes the dead worker's job over
        return "takeover"

    def end_case() -> None:
        for name, host in cluster.hosts.items():
            if host.process is not None and host.process.poll() is None:
                assert cluster.stop(name) == 0

    victim = Victim("victim", start, recover, end_case)
    run_matrix("worker crash matrix", fleet, probe, http_endpoint, victim, capsys)


def test_the_daemon_killed_at_20_points_recovers_on_restart_with_nothing_lost_or_doubled(
    fleet: Fleet, http_endpoint: HttpEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = fleet.add("victim", checks=("drift",), pulumi_stack="victim", schedule=SCHEDULE)
    fleet.write_config(hook_config(http_endpoint))
    assert fleet.cli("db", "upgrade").code == 0
    store = open_store(default_store_url(fleet.state_dir),
                       load_audit_key(fleet.state_dir, create=False), migrate=False)  # fmt: skip
    probe = Probe(store, stack, fleet.state_dir / "backend")
    log = (fleet.root / "daemon.log").open("ab")
    daemons: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [str(DRIFTWARDEN), "--config", str(fleet.config_path), "run", "--json-logs"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
        )  # fmt: skip
        daemons.append(process)
        return process

    def recover(_point: str) -> str:
        start({})
        return "restart"

    def end_case() -> None:
        daemons[-1].send_signal(signal.SIGTERM)
        assert daemons[-1].wait(timeout=60) == 0

    try:
        start({})  # the first, clean scan
        wait_until("the first scan", probe.settled, 120)
        end_case()
        victim = Victim(os.uname().nodename, start, recover, end_case)
        run_matrix("daemon crash matrix", fleet, probe, http_endpoint, victim, capsys)
    finally:
        for process in daemons:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        log.close()
