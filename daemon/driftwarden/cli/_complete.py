"""Shell completion of stack and target names, read from the config the command line
names (`--config`) or the one `find_config` finds. A config that cannot be read
completes nothing: completion never prints an error into the user's prompt."""

from __future__ import annotations

from pathlib import Path

import typer


def _names(ctx: typer.Context, what: str) -> list[str]:
    from driftwarden.config import find_config, load_config

    given = ctx.find_root().params.get("config")
    try:
        config = load_config(find_config(Path(given) if given else None))
    except Exception:  # any failure: complete nothing rather than break the prompt
        return []
    if what == "targets":
        return [target.name for target in config.targets]
    return [stack.name for stack in config.stacks]


def stack_names(ctx: typer.Context, incomplete: str) -> list[str]:
    return [name for name in _names(ctx, "stacks") if name.startswith(incomplete)]


def target_names(ctx: typer.Context, incomplete: str) -> list[str]:
    return [name for name in _names(ctx, "targets") if name.startswith(incomplete)]
