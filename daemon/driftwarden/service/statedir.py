"""The daemon's state directory and the secrets it generates there.

Layout (all 0700/0600, created on first use):
    <state>/backend/            Pulumi's file backend (the default backend URL)
    <state>/pulumi-home/        PULUMI_HOME for the engine (plugins, workspace settings)
    <state>/pulumi-passphrase   the generated passphrase of the default secrets provider
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from driftwarden.config import Config
from driftwarden.domain.errors import DriftwardenError
from driftwarden.system.credentials import credential as loaded_credential

ENV_STATE_DIR = "DRIFTWARDEN_STATE_DIR"
PASSPHRASE_CREDENTIAL = "pulumi-passphrase"


def default_state_dir(config: Config) -> Path:
    """$DRIFTWARDEN_STATE_DIR, [daemon] state_dir, systemd's $STATE_DIRECTORY, XDG."""
    if env := os.environ.get(ENV_STATE_DIR):
        return Path(env).expanduser().resolve()
    if config.daemon.state_dir is not None:
        return config.daemon.state_dir
    if env := os.environ.get("STATE_DIRECTORY"):
        return Path(env.split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "driftwarden"


@dataclass(frozen=True)
class StateDir:
    root: Path
    backend_url: str
    passphrase_file: Path
    passphrase_generated: bool  # False when configured or a systemd credential
    pulumi_home: Path

    @classmethod
    def for_config(cls, config: Config) -> StateDir:
        root = default_state_dir(config)
        backend_url = config.daemon.backend_url or (root / "backend").as_uri()
        configured = config.daemon.passphrase_file
        credential = loaded_credential(PASSPHRASE_CREDENTIAL)
        passphrase = configured or credential or root / "pulumi-passphrase"
        return cls(
            root=root,
            backend_url=backend_url,
            passphrase_file=passphrase,
            passphrase_generated=configured is None and credential is None,
            pulumi_home=config.daemon.pulumi_home or root / "pulumi-home",
        )

    @property
    def uses_default_backend(self) -> bool:
        return self.backend_url == (self.root / "backend").as_uri()

    def ensure(self) -> None:
        """Create what the defaults need; generate the passphrase once, never overwrite it."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.pulumi_home.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.uses_default_backend:
                (self.root / "backend").mkdir(mode=0o700, exist_ok=True)
            if self.passphrase_generated and not self.passphrase_file.exists():
                fd = os.open(self.passphrase_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_urlsafe(32) + "\n")
        except FileExistsError:
            pass  # another process generated it first: theirs is the passphrase
        except OSError as exc:
            raise DriftwardenError(
                f"cannot prepare the state directory {self.root}: {exc.strerror}",
                hint=f"make it writable or set [daemon] state_dir / ${ENV_STATE_DIR}",
            ) from None
