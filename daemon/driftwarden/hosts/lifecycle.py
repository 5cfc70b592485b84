"""What the two long-running hosts share — the single-host daemon (`run`) and the elected
scheduler of a distributed fleet (`worker`): reloading the config (SIGHUP), and when a
failing stack is tried again. One copy, so a reload installs a new `[[plugins]]` entry and
warns about restart-only settings in both, and a failing stack backs off the same way."""

from __future__ import annotations

import random
from pathlib import Path

from driftwarden.config import Config, StackConfig
from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import failure_streak
from driftwarden.service.logs import logger
from driftwarden.service.preflight import load_service_config
from driftwarden.service.runtime import Runtime
from driftwarden.store.queries import recent_statuses

# Settings a reload cannot change under a running host.
RESTART_ONLY = ("state_dir", "database_url", "backend_url", "passphrase_file", "pulumi_home",
                "pulumi_bin", "max_parallel", "mode")  # fmt: skip
RETRY_BASE_SECONDS = 30.0
# A retry's delay spreads by ±10%: stacks that failed together do not retry together.
RETRY_JITTER = (0.9, 1.1)


def reload_config(runtime: Runtime, config_path: Path) -> Config | None:
    """Load the config anew and make it the running one: recorded (by hash), its plugins
    installed, what needs a restart named. None (the running config kept) when it does
    not load."""
    try:
        config = load_service_config(config_path)
    except DriftwardenError as exc:
        logger.error("config reload failed; keeping the running config",
                     extra={"error": str(exc)})  # fmt: skip
        return None
    running = runtime.config
    changed = [key for key in RESTART_ONLY
               if getattr(config.daemon, key) != getattr(running.daemon, key)]  # fmt: skip
    if config.web != running.web:  # the web server was started with the old ones
        changed.append("web")
    if changed:
        logger.warning("these settings need a restart to apply", extra={"keys": changed})
    runtime.config = config
    runtime.record_config()
    runtime.ensure_plugins()
    logger.info("config reloaded", extra={"stacks": len(config.stacks)})
    return config


def stack_failures(runtime: Runtime, stack: StackConfig) -> int:
    """The stack's failing streak, read from the store (the one count both hosts use): the
    longest run of consecutive failures among its checks, newest first."""
    with runtime.store.read() as session:
        return max(
            (failure_streak(recent_statuses(session, stack.name, check.value, limit=20))
             for check in stack.checks),
            default=0,
        )  # fmt: skip


def retry_delay(failures: int, interval: float, jitter: float = 1.0) -> float:
    """Seconds until a failing stack's next try: base, twice that, four times, … up to
    its interval; times `jitter`."""
    if failures < 1:
        return 0.0
    return min(RETRY_BASE_SECONDS * 2.0 ** min(failures - 1, 30), interval) * jitter


def retry_after_failure(runtime: Runtime, stack: StackConfig) -> tuple[int, float]:
    """The stack just failed: its streak and the (jittered) delay until its retry."""
    failures = stack_failures(runtime, stack)
    interval = runtime.config.schedule_of(stack).interval_seconds or 86400
    return failures, retry_delay(failures, interval, random.uniform(*RETRY_JITTER))
