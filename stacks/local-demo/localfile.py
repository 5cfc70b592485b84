"""A dynamic provider that manages one file under a root directory.

`read()` reports what is on disk, so `pulumi refresh` sees out-of-band edits, mode
changes and deletions; `diff()` names the changed properties and which of them force
a replacement (moving the file to another root or path).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import (
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

PROPERTIES = ("root", "path", "content", "mode")
REPLACE_ON_CHANGE = ("root", "path")


def _target(props: dict[str, Any]) -> Path:
    return Path(props["root"]) / props["path"]


def _write(props: dict[str, Any]) -> dict[str, Any]:
    target = _target(props)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(props["content"])
    os.chmod(target, int(props["mode"], 8))
    return {key: props[key] for key in PROPERTIES}


class LocalFileProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(str(_target(props)), _write(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        target = Path(id_)
        if not target.exists():
            # A blank id tells the engine the resource is gone.
            return ReadResult("", {})
        live = {
            "root": props.get("root", str(target.parent)),
            "path": props.get("path", target.name),
            "content": target.read_text(),
            "mode": format(stat.S_IMODE(target.stat().st_mode), "04o"),
        }
        # Returning the live values as inputs too makes refresh diffs exact per property.
        return ReadResult(id_, live, live)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in PROPERTIES if olds.get(key) != news.get(key)]
        replaces = [key for key in changed if key in REPLACE_ON_CHANGE]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(_write(news))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        Path(id_).unlink(missing_ok=True)


class LocalFile(Resource):
    """A file at `root/path` with exact `content` and octal `mode` (e.g. "0644")."""

    root: pulumi.Output[str]
    path: pulumi.Output[str]
    content: pulumi.Output[str]
    mode: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        root: pulumi.Input[str],
        path: pulumi.Input[str],
        content: pulumi.Input[str],
        mode: pulumi.Input[str] = "0644",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            LocalFileProvider(),
            name,
            {"root": root, "path": path, "content": content, "mode": mode},
            opts,
        )
