"""Distributed mode's pure parts: the crash points, what `config check` says runs where,
which engine locks a lost run leaves to be removed, and the running checks per host."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from driftwarden.cli.config_check import where_it_runs
from driftwarden.config import load_config
from driftwarden.engine.api import EngineTarget
from driftwarden.engine.locks import LostRun, remove_stale_locks
from driftwarden.service.read.metrics import CheckState, Snapshot
from driftwarden.store.fleet import DurationHistogram
from driftwarden.system.failpoints import ENV_CRASH_AT
from driftwarden.web.metrics import FleetCollector
from tests.conftest import REPO
from tests.unit.test_locks import pulumi_lock


def test_a_crash_point_kills_the_process_the_nth_time_it_is_reached() -> None:
    script = (
        "from driftwarden.system.failpoints import crash_point\n"
        "for n in range(5):\n"
        "    crash_point('check.after-engine')\n"
        "    print(n, flush=True)\n"
    )
    crashed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env={ENV_CRASH_AT: "check.after-engine#3"}, check=False)  # fmt: skip
    assert crashed.returncode == -9
    assert crashed.stdout.split() == ["0", "1"]
    elsewhere = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               env={ENV_CRASH_AT: "delivery.after-send"}, check=False)  # fmt: skip
    assert elsewhere.returncode == 0
    assert elsewhere.stdout.split() == ["0", "1", "2", "3", "4"]


def test_config_check_says_what_runs_where(tmp_path: Path) -> None:
    demo = REPO / "stacks" / "local-demo"
    stacks = f'[[stacks]]\nname = "web"\nproject_dir = "{demo}"\nstack = "dev"\n'
    single = tmp_path / "single.toml"
    single.write_text(stacks)
    config = load_config(single)
    assert where_it_runs(config, "s3://bucket") == [
        "`driftwarden run` on this host schedules and runs every check, at most 2 engine runs "
        "at once",
        "stack locks: flocks in the state directory (this host only)",
    ]
    distributed = tmp_path / "distributed.toml"
    distributed.write_text(
        '[daemon]\nmode = "distributed"\ntakeover_after = "45s"\n'
        'database_url = "postgresql://dw@db.internal/driftwarden"\n' + stacks
    )
    lines = where_it_runs(load_config(distributed), "file:///var/lib/driftwarden/backend")
    assert lines[0].startswith("`driftwarden worker` on each host runs checks from the shared")
    assert "a worker silent for 45s is lost" in lines[2]
    assert lines[-1].startswith("warning: the backend is a file:// directory")
    assert not where_it_runs(load_config(distributed), "s3://b")[-1].startswith("warning")


def test_a_lock_left_on_another_host_goes_only_if_a_lost_run_held_it_then(tmp_path: Path) -> None:
    target = EngineTarget(
        name="demo", project_dir=REPO / "stacks" / "local-demo", stack="dev",
        backend_url=tmp_path.as_uri(), passphrase_file=tmp_path / "p", pulumi_home=tmp_path,
    )  # fmt: skip
    taken = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # pulumi_lock's timestamp
    lost_there = pulumi_lock(tmp_path, "dev", 4242, "worker-2")
    a_person = pulumi_lock(tmp_path, "dev", 4343, "laptop")
    # The same host, but a lost run of another time: someone else's lock now.
    later = pulumi_lock(tmp_path, "dev", 4444, "worker-3")
    lost = [
        LostRun("worker-2", taken - timedelta(seconds=5), taken + timedelta(seconds=30)),
        LostRun("worker-3", taken + timedelta(hours=1), taken + timedelta(hours=2)),
    ]
    assert remove_stale_locks(target, lost) == [lost_there]
    assert a_person.exists()
    assert later.exists()
    assert json.loads(later.read_text())["hostname"] == "worker-3"


def test_metrics_count_the_checks_running_on_each_host() -> None:
    def check(stack: str, status: str, host: str) -> CheckState:
        return CheckState(stack, "drift", status, None, None, host)

    snap = Snapshot(
        stack_states={}, open_findings={}, failures={}, remediations={}, outbox={},
        audit_head_seq=0, durations=DurationHistogram((1.0,), {}, {}, {}),
        checks=[check("a", "running", "w1"), check("b", "running", "w2"),
                check("c", "running", "w2"), check("d", "succeeded", "w3")],
    )  # fmt: skip
    registry = CollectorRegistry()
    registry.register(FleetCollector(lambda: snap, lambda: None))
    text = generate_latest(registry).decode()
    (family,) = [f for f in text_string_to_metric_families(text)
                 if f.name == "driftwarden_checks_running"]  # fmt: skip
    assert {s.labels["host"]: s.value for s in family.samples} == {"w1": 1.0, "w2": 2.0}
