#!/usr/bin/env python3
"""Seconds, not the schedule: from a person's kubectl write to the notification about it,
through the API server's audit log file and through its audit webhook; and how fast an
audit source ingests a flood of events.

A control plane on loopback (scripts/kube-cluster, with its audit log and a webhook to a
TLS port of ours; or an existing one: --cluster DIR), stacks/k8s-baseline deployed with
the real provider, `driftwarden run` with the stack on a 1 h schedule and a local HTTP
receiver as its notification target. Each sample: mallory (her own token) patches the
stack's ConfigMap with real kubectl; the time until the message naming her arrives.
Samples are spaced by the source's `min_interval` (a stack is checked at most once per
interval; the default is 30 s). Then the ingest: N copies of the recorded audit events
(new ids) appended to a log, read into a fresh store; events/s and peak memory.

    .venv/bin/python bench/audit_latency.py [--samples N] [--events N] [--cluster DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from driftwarden.config import load_config  # noqa: E402
from driftwarden.service.runtime import Runtime  # noqa: E402
from driftwarden.service.sources.platform import SourceReader  # noqa: E402
from k8s_refresh import deploy_baseline, script  # noqa: E402

DRIFTWARDEN = REPO / ".venv" / "bin" / "driftwarden"
AUDIT_FIXTURE = REPO / "tests" / "fixtures" / "events" / "k8s-audit.jsonl"
GOAL_SECONDS = 10.0  # median, write to notification (issue 21)
SOURCE = "bench-hook"


class Receiver:
    """A local HTTP endpoint for the notifications: the arrival time of each body."""

    def __init__(self) -> None:
        self.arrived: list[tuple[float, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.arrived.append((time.monotonic(), body.decode(errors="replace")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def first_after(self, since: float, text: str) -> float | None:
        return next((when for when, body in list(self.arrived)
                     if when >= since and text in body), None)  # fmt: skip


def latency(
    cluster: Path, config_path: Path, namespace: str, feed: str, samples: int,
    min_interval: int,
) -> list[float]:  # fmt: skip
    """`samples` write-to-notification delays through `feed` (log or webhook)."""
    options = json.loads((cluster / "options.json").read_text())
    name = options["webhook_url"].rsplit("/", 1)[-1]  # the webhook posts for this source
    receiver = Receiver()
    base = config_path.read_text().split("\n[[audit_sources]]")[0]
    timing = f'debounce = "1s"\nmin_interval = "{min_interval}s"\n'
    if feed == "log":
        source = f'name = "{name}"\npath = "{cluster / "logs" / "audit.log"}"\n{timing}'
        web = ""
    else:
        port = options["webhook_url"].split(":")[2].split("/")[0]
        source = (f'name = "{name}"\nwebhook_token_file = "{options["webhook_token_file"]}"\n'
                  f"{timing}")  # fmt: skip
        pki = cluster / "pki"
        web = (f'\n[web]\nlisten = "127.0.0.1:{port}"\n'
               f'tls_cert_file = "{pki / "webhook-receiver.crt"}"\n'
               f'tls_key_file = "{pki / "webhook-receiver.key"}"\n')  # fmt: skip
    config_path.write_text(
        base
        + f"\n[[audit_sources]]\n{source}{web}"
        + f'\n[notifications]\ndefault_targets = ["bench"]\n\n'
        f'[[targets]]\nname = "bench"\nurls = ["{receiver.url}"]\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "DRIFTWARDEN_STATE_DIR"}
    daemon = subprocess.Popen([str(DRIFTWARDEN), "--config", str(config_path), "run"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=env)  # fmt: skip
    kubectl = [
        str(script("ensure-kubernetes") / "kubectl"),
        f"--kubeconfig={cluster / 'users' / 'mallory.kubeconfig'}",
        "-n",
        namespace,
    ]
    delays = []
    try:
        time.sleep(8)  # the first scheduled check reads what the stack manages
        for sample in range(samples):
            value = f"{feed}-{sample}-{uuid.uuid4().hex[:6]}"
            wrote = time.monotonic()
            subprocess.run([*kubectl, "patch", "configmap", "app-config", "--type=merge",
                            f'-p={{"data":{{"LOG_LEVEL":"{value}"}}}}'],
                           check=True, capture_output=True)  # fmt: skip
            while (arrived := receiver.first_after(wrote, value)) is None:
                if time.monotonic() - wrote > 120:
                    raise SystemExit(f"{feed}: no notification within 120 s")
                time.sleep(0.05)
            delays.append(arrived - wrote)
            if sample + 1 < samples:
                time.sleep(max(0.0, min_interval - (time.monotonic() - wrote)) + 0.5)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=60)
        receiver.server.shutdown()
    return delays


def ingest(root: Path, events: int) -> tuple[float, int, int]:
    """Seconds to read `events` audit lines into a fresh store; kept; peak RSS delta (KiB)."""
    lines = AUDIT_FIXTURE.read_text().splitlines()
    log = root / "flood" / "audit.log"
    log.parent.mkdir()
    with log.open("w") as out:
        for index in range(events):
            event = json.loads(lines[index % len(lines)])
            event["auditID"] = str(uuid.uuid4())
            out.write(json.dumps(event) + "\n")
    config = root / "flood" / "driftwarden.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{root / "flood" / "state"}"\n\n'
        f'[[audit_sources]]\nname = "flood"\npath = "{log}"\ninventory = false\n'
    )
    runtime = Runtime.open(load_config(config))
    reader = SourceReader(runtime, runtime.config.audit_sources[0])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    kept = 0
    while True:
        done = reader.read_file(batches=4)
        kept += len(done.events)
        if not done.behind:
            break
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    runtime.store.close()
    return took, kept, peak


def summary(name: str, delays: list[float]) -> str:
    ordered = sorted(delays)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    median = statistics.median(ordered)
    verdict = "met" if median < GOAL_SECONDS else "not met"
    return (f"| {name:<8} | {len(delays):>7} | {median:>8.2f} | {p95:>6.2f} | {min(ordered):>5.2f} "
            f"| {max(ordered):>5.2f} | < {GOAL_SECONDS:.0f} s: {verdict} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument(
        "--min-interval",
        type=int,
        default=30,
        help="the source's min_interval in seconds (the product default: 30)",
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--cluster", type=Path, help="a running kube-cluster DIR with a webhook")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dw-bench-latency-") as scratch:
        root = Path(scratch)
        cluster = args.cluster
        token_file = root / "webhook-token"
        if cluster is None:
            token_file.write_text(uuid.uuid4().hex + uuid.uuid4().hex)
            cluster = root / "cluster"
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            script("kube-cluster", "up", str(cluster), "--user", "mallory:system:masters",
                   "--audit-webhook", f"https://127.0.0.1:{port}/ingest/audit/{SOURCE}",
                   "--audit-webhook-token-file", str(token_file))  # fmt: skip
        try:
            deployed = deploy_baseline(root, cluster / "kubeconfig", 'schedule = "every 1h"\n')
            config_path, namespace = deployed.config_path, deployed.namespace
            results = {feed: latency(cluster, config_path, namespace, feed, args.samples,
                                     args.min_interval) for feed in ("log", "webhook")}  # fmt: skip
        finally:
            if args.cluster is None:
                subprocess.run([str(REPO / "scripts" / "kube-cluster"), "down", str(cluster)],
                               check=False, capture_output=True)  # fmt: skip
        took, kept, peak = ingest(root, args.events)
    print(
        "kubectl write -> notification received (stacks/k8s-baseline, schedule 1 h, "
        f"debounce 1 s, min_interval {args.min_interval} s)"
    )
    print("| source   | samples |   median |    p95 |   min |   max | goal |")
    print("|----------|---------|----------|--------|-------|-------|------|")
    for feed, delays in results.items():
        print(summary(feed, delays))
    print(
        f"ingest: {args.events:,} audit events ({kept:,} kept) in {took:.2f}s: "
        f"{args.events / took:,.0f} events/s; peak memory +{peak / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    main()
