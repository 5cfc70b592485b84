"""The one way tests run `driftwarden`: in process (Typer's CliRunner), or as the user
runs it (the console script in a subprocess) for each command's smoke test.

In process skips the interpreter start and the imports (~0.85 s a call); the command's
code, its stdout/stderr and its exit code are the same. What only a process has — the
console script's entry point, a closed pipe, signals, a terminal — is tested through
`subprocess=True` or a direct subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess as subprocesses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from driftwarden.cli import app
from driftwarden.service.statedir import ENV_STATE_DIR
from tests.conftest import REPO

DRIFTWARDEN = REPO / ".venv" / "bin" / "driftwarden"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    def result(self, stack: str, check: str) -> dict[str, Any]:
        """One stack's check in `scan --json`."""
        for result in self.json["results"]:
            if result["stack"] == stack and result["check"] == check:
                return dict(result)
        raise AssertionError(f"no {stack}/{check} result in {self.stdout}")


def driftwarden(
    config: Path,
    *args: str,
    subprocess: bool = False,
    input: str | None = None,
    timeout: float = 600,
) -> CliResult:
    """`driftwarden --config CONFIG ARGS…` with no state dir from the environment and no
    terminal on stdin."""
    argv = ["--config", str(config), *args]
    if subprocess:
        done = subprocesses.run(
            [str(DRIFTWARDEN), *argv],
            env={k: v for k, v in os.environ.items() if k != ENV_STATE_DIR},
            input=input,
            stdin=None if input is not None else subprocesses.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)
    ran = CliRunner().invoke(app, argv, input=input, env={ENV_STATE_DIR: None})
    if ran.exception is not None and not isinstance(ran.exception, SystemExit):
        raise ran.exception  # a bug in the command: let the test show its traceback
    return CliResult(ran.exit_code, ran.stdout, ran.stderr)
