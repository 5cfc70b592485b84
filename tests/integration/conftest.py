"""Real-engine fixtures: local-demo stacks deployed with the real Pulumi CLI into a
scratch file backend, and driftwarden run as the user runs it (its console script)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from driftwarden.config import load_config
from driftwarden.engine.runner import Engine
from driftwarden.service.runtime import engine_target
from driftwarden.service.statedir import StateDir
from tests.cli import CliResult, driftwarden
from tests.conftest import REPO
from tests.integration.deployed import (
    TEMPLATE_STACK,
    Deployment,
    can_adopt_passphrase,
    copy_deployment,
)

DEMO_PROJECT = REPO / "stacks" / "local-demo"
SECRET_TOKEN = "initial-token-7f3d9a"


@dataclass
class DemoStack:
    """One local-demo stack: its project copy, its managed files and its pulumi stack."""

    name: str
    workdir: Path
    files: Path
    pulumi_stack: str = "dev"
    checks: tuple[str, ...] = ("drift", "code")
    schedule: str | None = None
    timeout: str | None = None

    def toml(self) -> str:
        lines = [
            "[[stacks]]",
            f'name = "{self.name}"',
            f'project_dir = "{self.workdir}"',
            f'stack = "{self.pulumi_stack}"',
            f"checks = {json.dumps(list(self.checks))}",
        ]
        if self.schedule:
            lines.append(f'schedule = "{self.schedule}"')
        if self.timeout:
            lines.append(f'timeout = "{self.timeout}"')
        return "\n".join(lines) + "\n"


@dataclass
class Fleet:
    """A config file, a state directory and the stacks it scans."""

    root: Path
    stacks: list[DemoStack] = field(default_factory=list)
    template: Deployment | None = None  # the session's deployment that `add` copies
    daemon: str = ""  # more `[daemon]` settings (a backend_url, say)

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def config_path(self) -> Path:
        return self.root / "driftwarden.toml"

    def write_config(self, extra: str = "") -> None:
        self.config_path.write_text(
            f'[daemon]\nstate_dir = "{self.state_dir}"\n{self.daemon}\n{extra}\n'
            + "\n".join(stack.toml() for stack in self.stacks)
        )

    def environment(self, stack: DemoStack) -> dict[str, str]:
        """What `driftwarden pulumi-env` gives a user: the engine's own environment."""
        config = load_config(self.config_path)
        state = StateDir.for_config(config)
        state.ensure()
        engine = self.engine
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
        env.update(engine.environment(engine_target(config.stack(stack.name), state)))
        env["PATH"] = f"{engine.bin_dir}{os.pathsep}{env['PATH']}"
        return env

    @functools.cached_property
    def engine(self) -> Engine:
        return Engine()

    def pulumi(self, stack: DemoStack, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["pulumi", "--non-interactive", *args, "--stack", stack.pulumi_stack],
            cwd=stack.workdir,
            env=self.environment(stack),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"pulumi {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def add(
        self,
        name: str,
        checks: tuple[str, ...] = ("drift", "code"),
        pulumi_stack: str = "dev",
        **options: str,
    ) -> DemoStack:
        """Deploy the demo project (a copy of the session's deployment when this fleet has
        one) and add it to the config."""
        stack = DemoStack(
            name=name,
            workdir=self.root / name / "project",
            files=self.root / name / "files",
            pulumi_stack=pulumi_stack,
            checks=checks,
            **options,
        )
        self.stacks.append(stack)
        self.write_config()
        if self.template is not None and can_adopt_passphrase(self.template, self.state_dir):
            copy_deployment(self.template, self.deployment(stack))
        else:
            self.deploy_demo(stack)
        return stack

    def deployment(self, stack: DemoStack) -> Deployment:
        return Deployment(stack.workdir, stack.files, self.state_dir, stack.pulumi_stack)

    def deploy_demo(self, stack: DemoStack) -> None:
        """Copy the demo project and deploy it with the real CLI."""
        shutil.copytree(
            DEMO_PROJECT, stack.workdir, ignore=shutil.ignore_patterns("venv", "Pulumi.*.yaml")
        )
        (stack.workdir / "venv").symlink_to(DEMO_PROJECT / "venv")
        env = self.environment(stack)
        subprocess.run(
            ["pulumi", "stack", "init", stack.pulumi_stack, "--non-interactive"],
            cwd=stack.workdir,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.pulumi(stack, "config", "set", "root", str(stack.files))
        self.pulumi(stack, "config", "set", "--secret", "apiToken", SECRET_TOKEN)
        self.pulumi(stack, "up", "--yes", "--skip-preview")

    def cli(self, *args: str, subprocess: bool = False, input: str | None = None) -> CliResult:
        """`driftwarden --config <this fleet's> ARGS…` (see tests/cli.py)."""
        return driftwarden(self.config_path, *args, subprocess=subprocess, input=input)

    def scan(self, *args: str) -> CliResult:
        return self.cli("scan", *args)

    def state_file(self, stack: DemoStack) -> Path:
        path = (
            self.state_dir
            / "backend"
            / ".pulumi"
            / "stacks"
            / "local-demo"
            / (f"{stack.pulumi_stack}.json")
        )
        assert path.is_file(), f"no state file at {path}"
        return path


@pytest.fixture(scope="session")
def deployed_demo(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """The demo stack deployed once, with the real CLI, for every fleet to copy."""
    if not (DEMO_PROJECT / "venv" / "bin" / "python").exists():
        pytest.fail("stacks/local-demo/venv is missing: run `make setup` (scripts/setup)")
    fleet = Fleet(root=tmp_path_factory.mktemp("deployed-demo"))
    return fleet.deployment(fleet.add("template", pulumi_stack=TEMPLATE_STACK))


@pytest.fixture
def fleet(tmp_path: Path, deployed_demo: Deployment) -> Fleet:
    return Fleet(root=tmp_path, template=deployed_demo)


@pytest.fixture
def demo(fleet: Fleet) -> DemoStack:
    return fleet.add("demo")
