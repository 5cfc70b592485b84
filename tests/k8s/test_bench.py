"""bench/k8s_refresh.py runs once, on the session's cluster (no timing assertions)."""

from __future__ import annotations

from tests.bench.test_benches import bench
from tests.k8s.conftest import Cluster


def test_k8s_refresh_bench_runs_one_round(cluster: Cluster) -> None:
    out = bench("k8s_refresh.py", "--rounds", "1", "--kubeconfig", str(cluster.kubeconfig))
    assert "ratio scan/refresh:" in out
    assert 'pulumi refresh --preview-only saw: {"same": 12}' in out
    assert "driftwarden saw 2 differences: config-reader: rules[0].resources[1] (critical)" in out


def test_audit_latency_bench_runs_once_on_the_sessions_cluster(cluster: Cluster) -> None:
    out = bench("audit_latency.py", "--samples", "1", "--min-interval", "2", "--events", "1000",
                "--cluster", str(cluster.root))  # fmt: skip
    assert "| log      |       1 |" in out, out
    assert "| webhook  |       1 |" in out, out
    assert "ingest: 1,000 audit events" in out, out
