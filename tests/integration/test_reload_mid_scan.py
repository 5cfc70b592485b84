"""A reload that lands while a scan runs changes the next scan, not this one: the daemon's
worker threads and the web's requests each keep the config they started with (the reload
used to swap it under them: a check rated by a rule of one config and remediated by the
policy of another)."""

from __future__ import annotations

import os

import pytest

from driftwarden.config import load_config
from driftwarden.domain.model import Check, Trigger
from driftwarden.service.runtime import Runtime
from driftwarden.service.scan.flow import scan_stack
from driftwarden.service.statedir import ENV_STATE_DIR
from driftwarden.web.app import WebState
from tests.integration.conftest import DemoStack, Fleet

pytestmark = pytest.mark.engine

RULE = """
[[rules]]
title = "message of the day rewritten"
severity = "{severity}"
path = "content"
resource_contains = "motd"
"""


def test_a_scan_keeps_the_config_it_started_with(
    fleet: Fleet, demo: DemoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_STATE_DIR, raising=False)
    fleet.write_config(RULE.format(severity="critical"))
    runtime = Runtime.open(load_config(fleet.config_path))
    fleet.write_config(RULE.format(severity="low"))
    reloaded = load_config(fleet.config_path)
    (demo.files / "motd.txt").write_text("HACKED\n")

    def reload_now(*_: object) -> None:  # what the daemon's loop does on SIGHUP
        runtime.config = reloaded

    try:
        stack = runtime.config.stack("demo")
        done = scan_stack(runtime, stack, [Check.DRIFT], trigger=Trigger.CLI,
                          progress=reload_now)  # fmt: skip
    finally:
        runtime.close_engines()
    (result,) = done.results
    assert result.severity == "critical", "rated by the config the scan started with"
    assert runtime.config is reloaded, "the next scan gets the reloaded config"


def test_a_web_request_reads_the_running_config_without_writing_the_shared_reader(
    fleet: Fleet, demo: DemoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_STATE_DIR, raising=False)
    assert fleet.scan("--check", "drift").code == 0
    started = load_config(fleet.config_path)
    fleet.write_config(RULE.format(severity="low"))
    running = load_config(fleet.config_path)
    state = WebState(Runtime.open_reader(started), running_config=lambda: running)
    assert state.runtime.config is running
    assert state.reader.config is started


def test_the_engine_leaves_the_callers_environment_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from driftwarden.engine.runner import Engine

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "the caller's own")
    monkeypatch.setenv("PULUMI_OPTION_COLOR", "never")
    before = dict(os.environ)
    Engine()
    assert dict(os.environ) == before
