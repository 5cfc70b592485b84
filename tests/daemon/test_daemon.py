"""`driftwarden run` as a real process on real local-demo stacks: schedules, the worker
limit, failures, `trigger`, SIGHUP, SIGTERM, SIGKILL and restart, and timeouts."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from driftwarden.service.statedir import ENV_STATE_DIR
from tests.cli import DRIFTWARDEN
from tests.integration.conftest import DemoStack, Fleet
from tests.notify.conftest import HttpEndpoint

pytestmark = pytest.mark.engine


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in (ENV_STATE_DIR, "NOTIFY_SOCKET")}


class Daemon:
    def __init__(self, fleet: Fleet, extra_env: dict[str, str] | None = None) -> None:
        self.fleet = fleet
        self.log = fleet.root / f"daemon-{time.monotonic_ns()}.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [str(DRIFTWARDEN), "--config", str(fleet.config_path), "run", "--json-logs"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env() | (extra_env or {}),
            )

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"message": line})
        return out

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def operations(fleet: Fleet) -> list[dict[str, Any]]:
    db = fleet.state_dir / "driftwarden.db"
    if not db.exists():
        return []
    try:  # read-only: never create the database before the daemon does
        with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=30) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT id, stack, kind, trigger, actor, status, outcome, error, error_kind,"
                " started_at, finished_at FROM operations ORDER BY started_at"
            ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # not migrated yet
        raise
    return [dict(row) for row in rows]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass(frozen=True)
class EngineProcess:
    pid: int
    ppid: int
    age_s: float
    cmdline: str


def engine_processes(root_pid: int) -> list[EngineProcess]:
    """pulumi CLI processes (preview/refresh) descending from `root_pid`."""
    parents: dict[int, int] = {}
    started: dict[int, int] = {}
    commands: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        pid = int(entry.name)
        fields = stat.rsplit(")", 1)[1].split()
        parents[pid] = int(fields[1])
        started[pid] = int(fields[19])  # starttime, in clock ticks since boot
        commands[pid] = [part.decode(errors="replace") for part in cmdline if part]

    def descends(pid: int) -> bool:
        seen = 0
        while pid > 1 and seen < 64:
            if pid == root_pid:
                return True
            pid, seen = parents.get(pid, 0), seen + 1
        return False

    uptime = float(Path("/proc/uptime").read_text().split()[0])
    ticks = os.sysconf("SC_CLK_TCK")
    engines = {
        pid
        for pid, cmd in commands.items()
        if cmd
        and cmd[0].endswith("/pulumi")
        and ({"preview", "refresh"} & set(cmd))
        and descends(pid)
    }
    # A child of an engine with the engine's own command line is not another engine: it
    # is the CLI forking to start a plugin, seen in the instant before its exec (seen
    # once: pid 1580, parent 1571 `pulumi preview … --stack broken`, 0.01 s old).
    return [
        EngineProcess(pid, parents[pid], round(uptime - started[pid] / ticks, 2),
                      " ".join(commands[pid]))
        for pid in sorted(engines)
        if parents[pid] not in engines
    ]  # fmt: skip


T = TypeVar("T")


@contextmanager
def sampling(measure: Callable[[], T]) -> Iterator[list[T]]:
    """`measure()` every 50 ms while the block runs; yields the samples."""
    samples: list[T] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(measure())
            done.wait(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join()


def running_ops(fleet: Fleet) -> list[dict[str, Any]]:
    return [op for op in operations(fleet) if op["status"] == "running"]


def trigger(fleet: Fleet, *names: str) -> dict[str, Any]:
    """`driftwarden trigger` writes a request row; with a broken config file, write it the
    same way through the store so the running daemon's side is what is tested."""
    result = subprocess.run(
        [str(DRIFTWARDEN), "--config", str(fleet.config_path), "trigger", *names, "--json"],
        capture_output=True, text=True, env=env(), check=False, timeout=60,
    )  # fmt: skip
    if result.returncode == 0:
        data: dict[str, Any] = json.loads(result.stdout)
        return data
    db = fleet.state_dir / "driftwarden.db"
    with sqlite3.connect(db, timeout=30) as conn:
        for name in names:
            conn.execute(
                "INSERT INTO scan_requests (id, stack, requested_at, requested_by)"
                " VALUES (?, ?, ?, ?)",
                (f"rq-test-{time.monotonic_ns()}", name,
                 datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" "), "test@host"),
            )  # fmt: skip
    return {"requests": [{"stack": name} for name in names]}


def scan_request(fleet: Fleet, request_id: str) -> tuple[datetime, datetime, str]:
    """The request row as the store holds it: (requested_at, claimed_at, claimed_by)."""
    db = fleet.state_dir / "driftwarden.db"
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=30) as conn:
        row = conn.execute(
            "SELECT requested_at, claimed_at, claimed_by FROM scan_requests WHERE id = ?",
            (request_id,),
        ).fetchone()
    assert row is not None, f"no request {request_id}"
    assert row[1] is not None, f"request {request_id} never claimed"
    return datetime.fromisoformat(row[0]), datetime.fromisoformat(row[1]), row[2]


def processes_in(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == str(directory):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def by_stack(ops: list[dict[str, Any]], stack: str, **match: str) -> list[dict[str, Any]]:
    return [op for op in ops if op["stack"] == stack and all(op[k] == v for k, v in match.items())]


HANGING_PROGRAM = "import time\ntime.sleep(300)\n"
FAILING_PROGRAM = 'raise RuntimeError("inventory down")\n'


def test_schedules_run_up_to_max_parallel_and_a_failing_stack_fails_alone(fleet: Fleet) -> None:
    healthy = ["alpha", "bravo", "charlie"]
    for name in healthy:
        fleet.add(name, checks=("drift",), pulumi_stack=name, schedule="every 2s")
    broken = fleet.add("broken", checks=("code",), pulumi_stack="broken", schedule="every 2s")
    (broken.workdir / "__main__.py").write_text(FAILING_PROGRAM)
    fleet.write_config("max_parallel = 2")

    daemon = Daemon(fleet)
    try:
        with sampling(lambda: engine_processes(daemon.process.pid)) as samples:
            wait_for(
                lambda: (
                    all(
                        len(by_stack(operations(fleet), n, status="succeeded")) >= 2
                        for n in healthy
                    )
                    and len(by_stack(operations(fleet), "broken", status="failed")) >= 2
                ),
                150,
                "every healthy stack scanned twice, the broken one failed twice",
            )
        ops = operations(fleet)
        busiest = max(samples, key=len)
        assert len(busiest) <= 2, f"more than max_parallel engine processes: {busiest}"
        assert len(busiest) == 2, "the two workers never ran side by side"
        failed = by_stack(ops, "broken", status="failed")
        assert len(failed) >= 2, "the broken stack fails on its own schedule, repeatedly"
        assert "RuntimeError: inventory down" in failed[0]["error"]
        assert {op["trigger"] for op in ops} == {"schedule"}
        assert {op["actor"] for op in ops} == {"daemon"}
        lines = [line for line in daemon.lines() if line.get("message") == "operation finished"]
        assert {"stack", "check", "status", "duration_s", "resources"} <= set(lines[0])
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        daemon.kill()


def test_a_triggered_scan_is_claimed_within_seconds_as_the_requester(fleet: Fleet) -> None:
    fleet.add("alpha", checks=("drift",), schedule="every 1h")
    daemon = Daemon(fleet)
    try:
        wait_for(lambda: by_stack(operations(fleet), "alpha", status="succeeded"), 60, "a scan")
        # Pickup is measured from the request row the CLI wrote to the daemon's claim, so
        # the CLI's own start-up does not count.
        request = trigger(fleet, "alpha")["requests"][0]
        assert request["stack"] == "alpha"
        op = wait_for(
            lambda: by_stack(operations(fleet), "alpha", trigger="request"), 30, "triggered scan"
        )[0]
        requested_at, claimed_at, claimed_by = scan_request(fleet, request["request_id"])
        assert claimed_by, "the daemon recorded who claimed the request"
        pickup = (claimed_at - requested_at).total_seconds()
        assert 0 <= pickup <= 5, f"picked up after {pickup:.1f}s"
        assert datetime.fromisoformat(op["started_at"]) >= requested_at
        assert "@" in op["actor"]
    finally:
        daemon.kill()


def test_sighup_adds_a_stack_and_an_invalid_config_keeps_the_old_one(fleet: Fleet) -> None:
    fleet.add("alpha", checks=("drift",), schedule="every 1h")
    daemon = Daemon(fleet)
    try:
        wait_for(lambda: by_stack(operations(fleet), "alpha", status="succeeded"), 60, "alpha")
        # A new stack was never scanned: it is due at once.
        fleet.add("delta", checks=("drift",), pulumi_stack="delta", schedule="every 1h")
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: by_stack(operations(fleet), "delta", status="succeeded"), 60, "delta")

        good = fleet.config_path.read_text()
        fleet.config_path.write_text(good + "\n[[stacks]\n")
        daemon.signal(signal.SIGHUP)
        wait_for(
            lambda: any("reload failed" in line.get("message", "") for line in daemon.lines()),
            30,
            "the reload failure logged",
        )
        before = len(by_stack(operations(fleet), "delta"))
        trigger(fleet, "delta")  # the CLI cannot parse the file either: request directly
        wait_for(lambda: len(by_stack(operations(fleet), "delta")) > before, 60, "a scan")
        assert daemon.process.poll() is None
    finally:
        daemon.kill()


def hanging_scan(fleet: Fleet) -> tuple[Daemon, DemoStack, dict[str, Any]]:
    """A daemon whose only stack's program hangs, and that stack's running operation: a
    signal sent now surely lands mid-scan."""
    hanging = fleet.add("hanging", checks=("code",), schedule="every 1h")
    (hanging.workdir / "__main__.py").write_text(HANGING_PROGRAM)
    daemon = Daemon(fleet)
    try:
        running = wait_for(lambda: by_stack(running_ops(fleet), "hanging"), 60, "the scan")[0]
        wait_for(lambda: processes_in(hanging.workdir), 60, "the program running")
    except BaseException:
        daemon.kill()
        raise
    return daemon, hanging, running


def test_sigterm_during_a_scan_cancels_it_and_leaves_no_process(fleet: Fleet) -> None:
    daemon, hanging, running = hanging_scan(fleet)
    try:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
        statuses = {op["id"]: op["status"] for op in operations(fleet)}
        assert statuses[running["id"]] == "cancelled"
        assert "running" not in statuses.values()
        assert engine_processes(daemon.process.pid) == []
        assert processes_in(hanging.workdir) == [], "the hanging program was left behind"
    finally:
        daemon.kill()


def test_sigkill_then_restart_marks_the_run_interrupted_and_scans_on(fleet: Fleet) -> None:
    daemon, hanging, victim = hanging_scan(fleet)
    try:
        daemon.process.kill()
        daemon.process.wait(timeout=30)
        # The orphaned engine notices its daemon is gone and stops, program included.
        wait_for(lambda: not processes_in(hanging.workdir), 30, "the orphaned engine to stop")
    finally:
        daemon.kill()
    (hanging.workdir / "__main__.py").write_text(FAILING_PROGRAM)
    fleet.add("alpha", checks=("drift",), pulumi_stack="alpha", schedule="every 1h")
    restarted = Daemon(fleet)
    try:
        wait_for(
            lambda: (
                next((op for op in operations(fleet) if op["id"] == victim["id"]), {}).get("status")
                == "interrupted"
            ),
            60,
            "the killed operation marked interrupted",
        )
        wait_for(lambda: by_stack(operations(fleet), "alpha", status="succeeded"), 60, "a scan")
        restarted.signal(signal.SIGTERM)
        assert restarted.wait(timeout=60) == 0
    finally:
        restarted.kill()
    assert fleet.cli("audit", "verify", "--json").json["ok"] is True


def test_timeout_stops_the_whole_engine_and_frees_the_stack(fleet: Fleet) -> None:
    slow = fleet.add("slow", checks=("code",), schedule="every 1h", timeout="5s")
    main = slow.workdir / "__main__.py"
    original = main.read_text()
    # The program hangs, and first starts a helper in a session of its own (as pulumi
    # does with every plugin): a timeout must stop it too, not only the worker's group.
    main.write_text(
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
        " start_new_session=True)\n"
        "time.sleep(120)\n" + original
    )
    fleet.write_config()
    daemon = Daemon(fleet)  # never scanned: due at once
    try:
        wait_for(lambda: len(processes_in(slow.workdir)) >= 2, 60, "the program and its helper")
        timed_out = wait_for(
            lambda: by_stack(operations(fleet), "slow", status="timed_out"), 90, "a timeout"
        )[0]
        assert timed_out["error_kind"] == "timed_out"
        assert "timeout (5s)" in timed_out["error"]
        assert processes_in(slow.workdir) == [], "engine processes were left behind"

        # The stack is free again: with the program fixed and room to finish (a reload;
        # 5 s is too tight for a real preview on a busy machine), a requested scan succeeds.
        main.write_text(original)
        slow.timeout = "5m"
        fleet.write_config()
        daemon.signal(signal.SIGHUP)
        wait_for(
            lambda: any(line.get("message") == "config reloaded" for line in daemon.lines()),
            30,
            "the reload",
        )
        subprocess.run(
            [str(DRIFTWARDEN), "--config", str(fleet.config_path), "trigger", "slow"],
            capture_output=True, env=env(), check=True, timeout=60,
        )  # fmt: skip
        try:
            wait_for(
                lambda: by_stack(operations(fleet), "slow", status="succeeded"),
                90,
                "the next scan of the freed stack",
            )
        except AssertionError as exc:
            seen = by_stack(operations(fleet), "slow")
            raise AssertionError(f"{exc}; operations: {seen}") from None
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        daemon.kill()


def test_digests_go_out_on_their_schedule_while_drift_stays_open(
    fleet: Fleet, http_endpoint: HttpEndpoint
) -> None:
    stack = fleet.add("demo", checks=("drift",), schedule="every 1h")
    (stack.files / "motd.txt").write_text("HACKED\n")
    fleet.write_config(
        '\n[notifications]\ndefault_targets = ["hook"]\n\n'
        f'[[targets]]\nname = "hook"\nurls = ["{http_endpoint.url()}"]\ndigest = "every 3s"\n'
    )
    daemon = Daemon(fleet)  # never scanned: due at once
    try:

        def titles() -> list[str]:
            return [request.json()["title"] for request in http_endpoint.requests]

        digest = "[driftwarden] digest: 1 stack with open findings (1 resource)"
        wait_for(lambda: titles().count(digest) >= 2, 90, "two digests")
        assert titles()[0] == "[driftwarden] demo: 1 resource drifted"  # once, then digests
        assert titles().count("[driftwarden] demo: 1 resource drifted") == 1
        keys = [r.headers["X-Driftwarden-Idempotency-Key"] for r in http_endpoint.requests]
        assert len(set(keys)) == len(keys), "each digest is its own message"
        assert (
            'content`: `"hello\\n"` → `"HACKED\\n"`' in http_endpoint.requests[-1].json()["message"]
        )
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        daemon.kill()
    logged = [line for line in daemon.lines() if line.get("message") == "digest"]
    assert "queued" in {line["status"] for line in logged}


def skips(fleet: Fleet, stack: str) -> list[dict[str, Any]]:
    db = fleet.state_dir / "driftwarden.db"
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(
            "SELECT details FROM audit_events WHERE action = 'scan.skipped' AND stack = ?"
            " ORDER BY seq",
            (stack,),
        ).fetchall()
    return [json.loads(row[0]) for row in rows]


def test_a_skip_streak_is_audited_once_and_summed_up(fleet: Fleet) -> None:
    stack = fleet.add("slow", checks=("code",), schedule="every 1s")
    main = stack.workdir / "__main__.py"
    original = main.read_text()
    main.write_text("import pathlib, time\npathlib.Path('hanging').touch()\ntime.sleep(10)\n"
                    + original)  # fmt: skip
    daemon = Daemon(fleet)
    try:
        wait_for((stack.workdir / "hanging").exists, 90, "the slow scan running")
        time.sleep(5)  # five ticks or so, each skipped
        assert len(skips(fleet, "slow")) == 1, "every skip of one streak was audited"
        wait_for(lambda: len(skips(fleet, "slow")) >= 2, 90, "the streak's summary")
        first, summary = skips(fleet, "slow")[:2]  # a next streak may have begun
        assert first == {"reason": "still running", "trigger": "schedule"}
        assert summary["skipped"] >= 3
        assert datetime.fromisoformat(summary["since"]).tzinfo is not None
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        daemon.kill()
