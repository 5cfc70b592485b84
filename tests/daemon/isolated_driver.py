"""Runs one isolated engine check the way the daemon does, for tests that kill this
process (the "daemon") at chosen moments: `python -m tests.daemon.isolated_driver
CONFIG STACK ACTION`. Prints `spawning` just before the worker starts."""

from __future__ import annotations

import sys
from pathlib import Path

from driftwarden.config import load_config
from driftwarden.engine.api import Action
from driftwarden.engine.isolated import IsolatedEngine
from driftwarden.service.runtime import engine_target
from driftwarden.service.statedir import StateDir


def main(config_path: str, stack_name: str, action: str) -> None:
    config = load_config(Path(config_path))
    stack = config.stack(stack_name)
    target = engine_target(stack, StateDir.for_config(config))
    engine = IsolatedEngine(config.daemon.pulumi_bin)
    print("spawning", flush=True)
    engine.run(target, Action(action), lambda _line: None, timeout=600)


if __name__ == "__main__":
    main(*sys.argv[1:4])
