"""Find the Pulumi CLI of exactly the pinned SDK version (see scripts/ensure-pulumi).

`find_engine` needs no Pulumi SDK: the CLI process locates the engine (to fail fast, and
to install plugins) while only its engine workers load the SDK (`locate_engine`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING

from driftwarden.domain.model import ErrorKind
from driftwarden.engine.errors import EngineError

if TYPE_CHECKING:
    from pulumi.automation import PulumiCommand

REQUIRED_BINARIES = ("pulumi", "pulumi-language-python", "pulumi-language-python-exec")


def pinned_version() -> str:
    """The pulumi SDK's version: the CLI must match it exactly."""
    return package_version("pulumi")


def _cache_root() -> Path:
    root = os.environ.get("DRIFTWARDEN_PULUMI_CACHE")
    if root is None:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(cache) / "driftwarden" / "pulumi")
    return Path(root)


def ensure_pulumi_cache(version: str) -> Path:
    """Where scripts/ensure-pulumi caches the engine it builds."""
    return _cache_root() / f"v{version}" / "bin"


def _version(bin_dir: Path) -> str | None:
    """What `bin_dir/pulumi version` says. Running it costs a fifth of a second, so a
    version once read is kept for the next process (VERIFIED, keyed by the binary's
    path, mtime and size)."""
    try:
        binary = (bin_dir / "pulumi").stat()
    except OSError as exc:
        raise _cannot_run(bin_dir, exc) from None
    key, stamp = str(bin_dir / "pulumi"), [binary.st_mtime_ns, binary.st_size]
    known = _verified().get(key)
    if isinstance(known, list) and known[:2] == stamp and isinstance(known[2], str):
        return known[2]
    version = _read_version(bin_dir)
    if version is not None:
        _remember(key, [*stamp, version])
    return version


def _read_version(bin_dir: Path) -> str | None:
    try:
        done = subprocess.run(
            [str(bin_dir / "pulumi"), "version"], capture_output=True, text=True, timeout=60,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"}, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise _cannot_run(bin_dir, exc) from None
    text = done.stdout.strip().removeprefix("v")
    return (text or None) if done.returncode == 0 else None


def _cannot_run(bin_dir: Path, exc: Exception) -> EngineError:
    return EngineError(
        ErrorKind.CLI_MISSING, f"cannot run {bin_dir / 'pulumi'}: {exc}",
        hint="run scripts/ensure-pulumi",
    )  # fmt: skip


VERIFIED = "verified-versions.json"


def _verified() -> dict[str, object]:
    try:
        data = json.loads((_cache_root() / VERIFIED).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(key: str, verified: list[object]) -> None:
    """Best effort: an unwritable cache (a hardened service) only costs the check."""
    path = _cache_root() / VERIFIED
    data = _verified() | {key: verified}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(data))
        temporary.replace(path)


def _command(bin_dir: Path, version: str) -> PulumiCommand:
    """The PulumiCommand the SDK would build (without running `pulumi version` again:
    its public attributes, `command` and `version`, are all the workspaces use)."""
    from pulumi.automation import PulumiCommand
    from semver import VersionInfo

    command = PulumiCommand.__new__(PulumiCommand)
    root = bin_dir.parent if bin_dir.name == "bin" else None
    if root is None:
        _on_path(bin_dir)
    command.command = str(root / "bin" / "pulumi") if root else "pulumi"
    command.version = VersionInfo.parse(version)
    return command


def _on_path(bin_dir: Path) -> None:
    path = os.environ.get("PATH", "")
    if str(bin_dir) not in path.split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{path}"


def locate_engine(configured: Path | None) -> tuple[Path, PulumiCommand]:
    """The bin directory holding pulumi and its Python language host, and its command."""
    bin_dir, version = find_engine(configured)
    return bin_dir, _command(bin_dir, version)


def find_engine(configured: Path | None) -> tuple[Path, str]:
    """The bin directory holding pulumi of the pinned version and its Python language
    host, and that version."""
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
                    ErrorKind.CLI_MISSING,
                    f"{bin_dir} lacks {', '.join(missing)}",
                    hint="point [daemon] pulumi_bin at the directory scripts/ensure-pulumi prints",
                )
            continue
        have = _version(bin_dir) or "unknown"
        if have == want:
            return bin_dir, have
        wrong.append(f"{bin_dir / 'pulumi'} is v{have}")
    if wrong:
        raise EngineError(
            ErrorKind.CLI_VERSION,
            f"pulumi CLI version mismatch: {'; '.join(wrong)}, but the pulumi SDK is v{want}",
            hint="run scripts/ensure-pulumi to build the matching CLI",
        )
    raise EngineError(
        ErrorKind.CLI_MISSING,
        f"no pulumi CLI v{want} found on PATH or in {ensure_pulumi_cache(want)}",
        hint="run scripts/ensure-pulumi (or set [daemon] pulumi_bin)",
    )
