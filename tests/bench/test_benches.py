"""Every bench runs once at a tiny size, so that a schema or API change cannot break one
unnoticed. Only that it runs and prints its figures is checked: no timing assertions."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.engine


def bench(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / name), *args],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_store_bench_runs_at_a_tiny_size_on_both_databases() -> None:
    out = bench("store_bench.py", "--operations", "500", "--findings", "100", "--stacks",
                "10", "--audit-events", "200", "--db", "both")  # fmt: skip
    for figure in ("status (10 stacks)", "history --limit 50", "audit verify (200 events)"):
        assert f"| sqlite     | {figure}" in out
        assert f"| postgresql | {figure}" in out


def test_scan_vs_refresh_runs_one_round() -> None:
    out = bench("scan_vs_refresh.py", "--rounds", "1")
    assert "driftwarden scan --check drift --json  median" in out
    assert "ratio scan/refresh:" in out


def test_fleet_bench_runs_one_round_of_each_way() -> None:
    out = bench("fleet.py", "--stacks", "2", "--parallel", "2", "--rounds", "1")
    for way in ("xargs -P 2 pulumi refresh", "a serial shell loop", "driftwarden scan --all",
                "the running daemon"):  # fmt: skip
        assert f"| {way}" in out, out
    assert "goal: scan and the daemon >= 0.95" in out


def test_cli_start_bench_runs_at_a_tiny_size() -> None:
    out = bench("cli_start.py", "--stacks", "3", "--operations", "100", "--rounds", "1")
    for command in ("--help", "--version", "status --json", "history --json --limit 50"):
        assert f"| {command}" in out, out


def test_idle_daemon_bench_runs_for_a_moment() -> None:
    out = bench("idle_daemon.py", "--stacks", "1", "--seconds", "2")
    assert "RSS first" in out, out
    assert "% of a core" in out, out


def test_web_pages_bench_runs_at_a_tiny_size() -> None:
    out = bench("web_pages.py", "--stacks", "3", "--operations", "100", "--rounds", "1")
    for page in ("fleet", "audit (100 events)", "metrics", "healthz"):
        assert f"| {page} " in out, out


def test_workers_bench_runs_at_a_tiny_size() -> None:
    out = bench("workers.py", "--stacks", "2", "--rounds", "1", "--workers", "1,2")
    for way in ("scan --all --parallel 1", "1 worker(s) x 1 engine", "2 worker(s) x 1 engine"):
        assert f"| {way}" in out, out
    assert "queue's own cost per check" in out, out


def test_audit_trust_bench_runs_at_a_tiny_size() -> None:
    out = bench("audit_trust.py", "--updates", "1", "--events", "300", "--digest-every", "100")
    assert "| first state audit (every checkpoint, rated, stored) |" in out, out
    assert "| audit verify --public-key (store) |" in out, out
    assert "ratio public-key/HMAC verify time:" in out, out
