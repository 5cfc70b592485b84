"""stacks/local-demo deployed into a scratch state directory with the real CLI, and the
driftwarden config that scans it: what the local-demo benches start from."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from driftwarden.config import load_config
from driftwarden.engine.runner import Engine
from driftwarden.service.runtime import engine_target
from driftwarden.service.statedir import StateDir

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class DemoDeployment:
    root: Path
    project: Path
    config_path: Path
    engine: Engine
    env: dict[str, str]  # the engine's own environment (what `driftwarden pulumi-env` gives)

    @property
    def files(self) -> Path:
        return self.root / "files"

    def pulumi(self, *argv: str) -> None:
        subprocess.run(["pulumi", "--non-interactive", *argv, "--stack", "dev"],
                       cwd=self.project, env=self.env, check=True, capture_output=True)  # fmt: skip


def deploy_demo(root: Path) -> DemoDeployment:
    """Copy the project, write the config (stack `demo`, drift checks) and `pulumi up`."""
    project = root / "project"
    shutil.copytree(REPO / "stacks" / "local-demo", project,
                    ignore=shutil.ignore_patterns("venv", "Pulumi.*.yaml"))  # fmt: skip
    (project / "venv").symlink_to(REPO / "stacks" / "local-demo" / "venv")
    config_path = root / "driftwarden.toml"
    config_path.write_text(
        f'[daemon]\nstate_dir = "{root / "state"}"\n\n[[stacks]]\nname = "demo"\n'
        f'project_dir = "{project}"\nstack = "dev"\nchecks = ["drift"]\n'
    )
    config = load_config(config_path)
    state = StateDir.for_config(config)
    state.ensure()
    engine = Engine()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env |= engine.environment(engine_target(config.stacks[0], state))
    env["PATH"] = f"{engine.bin_dir}{os.pathsep}{env['PATH']}"
    demo = DemoDeployment(root, project, config_path, engine, env)
    subprocess.run(["pulumi", "stack", "init", "dev", "--non-interactive"], cwd=project,
                   env=env, check=True, capture_output=True)  # fmt: skip
    demo.pulumi("config", "set", "root", str(demo.files))
    demo.pulumi("config", "set", "--secret", "apiToken", "bench-token")
    demo.pulumi("up", "--yes", "--skip-preview")
    return demo
