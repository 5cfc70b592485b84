"""Provider plugins from local files, installed into the engine's PULUMI_HOME.

Air-gapped sites cannot let the engine download a plugin (driftwarden turns automatic
acquisition off anyway), so `[[plugins]]` names a binary on disk for each one. It is
installed with `pulumi plugin install KIND NAME VERSION --file PATH`, once: a stamp of
the source (path, size, mtime) beside the plugin says whether it is already there.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from driftwarden.domain.model import ErrorKind
from driftwarden.engine.errors import EngineError, first_error

INSTALL_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Plugin:
    kind: str  # resource | converter | analyzer | language | tool
    name: str  # kubernetes
    version: str  # 4.25.0 (no leading v)
    path: Path  # the binary, folder or tarball to install from

    @property
    def label(self) -> str:
        return f"{self.kind} plugin {self.name} v{self.version}"

    def directory(self, pulumi_home: Path) -> Path:
        return pulumi_home / "plugins" / f"{self.kind}-{self.name}-v{self.version}"

    def _stamp_file(self, pulumi_home: Path) -> Path:
        return pulumi_home / "plugins" / f".driftwarden-{self.kind}-{self.name}-v{self.version}"

    def _source_stamp(self) -> str:
        info = self.path.stat()
        return f"{self.path.resolve()}\n{info.st_size}\n{info.st_mtime_ns}\n"

    def installed(self, pulumi_home: Path) -> bool:
        """Installed from this very file (and not half-installed)."""
        directory = self.directory(pulumi_home)
        if not directory.is_dir() or directory.with_name(directory.name + ".partial").exists():
            return False
        try:
            return self._stamp_file(pulumi_home).read_text() == self._source_stamp()
        except OSError:
            return False


def install_plugin(pulumi: Path, pulumi_home: Path, plugin: Plugin) -> bool:
    """Install `plugin` into `pulumi_home` unless it is there already; True if installed now."""
    if not plugin.path.exists():
        raise EngineError(
            ErrorKind.PLUGIN_MISSING,
            f"{plugin.label}: {plugin.path} does not exist",
            hint="fix the [[plugins]] entry's path (for kubernetes: the directory "
            "scripts/ensure-kubernetes prints holds pulumi-resource-kubernetes)",
        )
    if plugin.installed(pulumi_home):
        return False
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULUMI_")}
    env.update(PULUMI_HOME=str(pulumi_home), PULUMI_SKIP_UPDATE_CHECK="true")
    argv = [str(pulumi), "plugin", "install", plugin.kind, plugin.name, plugin.version,
            "--file", str(plugin.path), "--reinstall", "--non-interactive"]  # fmt: skip
    try:
        result = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise EngineError(
            ErrorKind.PLUGIN_MISSING,
            f"{plugin.label}: installing from {plugin.path} took longer than "
            f"{INSTALL_TIMEOUT_SECONDS}s",
        ) from None
    if result.returncode != 0:
        raise EngineError(
            ErrorKind.PLUGIN_MISSING,
            f"{plugin.label}: cannot install from {plugin.path}: "
            f"{first_error(result.stderr or result.stdout)}",
            hint="point the [[plugins]] entry at the plugin's executable",
        )
    plugin._stamp_file(pulumi_home).write_text(plugin._source_stamp())
    return True
