"""Deploy the demo stack once per session; copy the deployment into each test's fleet.

`pulumi stack init` + two `config set` + `up` cost a few seconds per test. A deployment is
files on disk — the project's stack config, the managed files, and the stack's checkpoint,
history and backups in the file backend — so `copy_deployment` copies them and rewrites
the paths (and, for another stack name, the URNs) the template wrote. The copy is what
`pulumi up` would have written in the new place: scans of it are in sync, its history has
the template's one update, and its secrets decrypt with the template's passphrase, which
the target fleet adopts (a fleet that already has another passphrase deploys for real).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

PROJECT = "local-demo"
TEMPLATE_STACK = "dev"
PASSPHRASE = "pulumi-passphrase"


@dataclass(frozen=True)
class Deployment:
    """Where one deployed stack's files are: its project copy, managed files and backend."""

    workdir: Path
    files: Path
    state_dir: Path
    pulumi_stack: str

    @property
    def pulumi_dir(self) -> Path:
        return self.state_dir / "backend" / ".pulumi"

    def backend_files(self) -> list[tuple[Path, Path]]:
        """(file, its path relative to .pulumi) for everything this stack owns there."""
        owned = [
            self.pulumi_dir / "stacks" / PROJECT,
            self.pulumi_dir / "history" / PROJECT / self.pulumi_stack,
            self.pulumi_dir / "backups" / PROJECT / self.pulumi_stack,
        ]
        found = []
        for folder in owned:
            for path in sorted(folder.rglob("*")):
                stack_file = path.name.split(".")[0] == self.pulumi_stack
                if path.is_file() and (folder.name != PROJECT or stack_file):
                    found.append((path, path.relative_to(self.pulumi_dir)))
        return found


def can_adopt_passphrase(template: Deployment, state_dir: Path) -> bool:
    """Whether a fleet's secrets provider can read the template's secrets."""
    existing = state_dir / PASSPHRASE
    return (
        not existing.exists()
        or existing.read_bytes() == (template.state_dir / PASSPHRASE).read_bytes()
    )


def adopt_passphrase(template: Deployment, state_dir: Path) -> None:
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = state_dir / PASSPHRASE
    if not target.exists():
        shutil.copy2(template.state_dir / PASSPHRASE, target)
        target.chmod(0o600)


def copy_deployment(template: Deployment, target: Deployment) -> None:
    """Make `target` what deploying the demo there would have made (see the module doc)."""
    adopt_passphrase(template, target.state_dir)
    renames = _renames(template, target)
    shutil.copytree(
        template.workdir,
        target.workdir,
        symlinks=True,  # the project's venv stays a link to the shared one
        ignore=shutil.ignore_patterns("Pulumi.*.yaml", "__pycache__"),
    )
    config = (template.workdir / f"Pulumi.{template.pulumi_stack}.yaml").read_text()
    (target.workdir / f"Pulumi.{target.pulumi_stack}.yaml").write_text(_rewrite(config, renames))
    shutil.copytree(template.files, target.files)
    meta = template.pulumi_dir / "meta.yaml"
    for extra in (meta, meta.with_name("meta.yaml.attrs")):
        if extra.exists() and not (target.pulumi_dir / extra.name).exists():
            target.pulumi_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(extra, target.pulumi_dir / extra.name)
    for path, relative in template.backend_files():
        if path.name.endswith(".attrs"):
            continue  # written with the content it describes
        destination = target.pulumi_dir / _rename_stack(relative, template, target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        content = _rewrite(path.read_text(), renames).encode()
        destination.write_bytes(content)
        attrs = path.with_name(path.name + ".attrs")
        if attrs.exists():
            fields = json.loads(attrs.read_text())
            fields["md5"] = base64.b64encode(hashlib.md5(content).digest()).decode()
            destination.with_name(destination.name + ".attrs").write_text(json.dumps(fields))


def _renames(template: Deployment, target: Deployment) -> list[tuple[str, str]]:
    renames = [
        (str(template.files), str(target.files)),
        (str(template.workdir), str(target.workdir)),
    ]
    old, new = template.pulumi_stack, target.pulumi_stack
    if old != new:
        renames += [
            (f"urn:pulumi:{old}::", f"urn:pulumi:{new}::"),
            (f'::{PROJECT}-{old}"', f'::{PROJECT}-{new}"'),
            (f'organization/{PROJECT}/{old}"', f'organization/{PROJECT}/{new}"'),
        ]
    return renames


def _rewrite(text: str, renames: list[tuple[str, str]]) -> str:
    for old, new in renames:
        text = text.replace(old, new)
    return text


def _rename_stack(relative: Path, template: Deployment, target: Deployment) -> Path:
    """stacks/local-demo/dev.json → …/<new>.json; history/local-demo/dev/dev-N… likewise."""
    old, new = template.pulumi_stack, target.pulumi_stack
    parts = [new if part == old else part for part in relative.parts[:-1]]
    name = relative.name
    if name.startswith((f"{old}.", f"{old}-")):
        name = new + name[len(old) :]
    return Path(*parts, name)
