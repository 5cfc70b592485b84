"""Find the Pulumi CLI of exactly the pinned SDK version (see scripts/ensure-pulumi)."""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib.metadata import version as package_version
from pathlib import Path

from driftwarden.engine.errors import EngineError, EngineErrorKind

REQUIRED_BINARIES = ("pulumi", "pulumi-language-python", "pulumi-language-python-exec")


def pinned_version() -> str:
    """The pulumi SDK's version: the CLI must match it exactly."""
    return package_version("pulumi")


def ensure_pulumi_cache(version: str) -> Path:
    """Where scripts/ensure-pulumi caches the engine it builds."""
    root = os.environ.get("DRIFTWARDEN_PULUMI_CACHE")
    if root is None:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(cache) / "driftwarden" / "pulumi")
    return Path(root) / f"v{version}" / "bin"


def cli_version(bin_dir: Path) -> str:
    try:
        out = subprocess.run(
            [str(bin_dir / "pulumi"), "version"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise EngineError(
            EngineErrorKind.CLI_MISSING,
            f"cannot run {bin_dir / 'pulumi'}: {exc}",
            hint="run scripts/ensure-pulumi",
        ) from None
    return out.stdout.strip().removeprefix("v")


def locate_engine(configured: Path | None) -> tuple[Path, str]:
    """The bin directory holding pulumi and its Python language host, and its version."""
    want = pinned_version()
    candidates: list[Path] = []
    if configured is not None:
        candidates.append(configured)
    else:
        if found := shutil.which("pulumi"):
            candidates.append(Path(found).resolve().parent)
        candidates.append(ensure_pulumi_cache(want))
    wrong: list[str] = []
    for bin_dir in candidates:
        missing = [name for name in REQUIRED_BINARIES if not (bin_dir / name).exists()]
        if missing:
            if configured is not None:
                raise EngineError(
                    EngineErrorKind.CLI_MISSING,
                    f"{bin_dir} lacks {', '.join(missing)}",
                    hint="point [daemon] pulumi_bin at the directory scripts/ensure-pulumi prints",
                )
            continue
        have = cli_version(bin_dir)
        if have == want:
            return bin_dir, have
        wrong.append(f"{bin_dir / 'pulumi'} is v{have}")
    if wrong:
        raise EngineError(
            EngineErrorKind.CLI_VERSION,
            f"pulumi CLI version mismatch: {'; '.join(wrong)}, but the pulumi SDK is v{want}",
            hint="run scripts/ensure-pulumi to build the matching CLI",
        )
    raise EngineError(
        EngineErrorKind.CLI_MISSING,
        f"no pulumi CLI v{want} found on PATH or in {ensure_pulumi_cache(want)}",
        hint="run scripts/ensure-pulumi (or set [daemon] pulumi_bin)",
    )
