"""`driftwarden pulumi-env`: shell exports to run the Pulumi CLI the way driftwarden does."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from driftwarden.cli._complete import stack_names
from driftwarden.cli._context import app_state, handle_errors


@handle_errors
def pulumi_env_command(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(help="The stack whose environment to print.", autocompletion=stack_names),
    ],
) -> None:
    """Print `export` lines so `pulumi` reaches the same backend, passphrase and engine.

    Use: eval "$(driftwarden pulumi-env NAME)"; then `pulumi up` in the project directory.
    The passphrase itself is never printed, only the file that holds it.
    """
    from driftwarden.engine.runner import Engine
    from driftwarden.service.runtime import engine_target
    from driftwarden.service.statedir import StateDir

    config = app_state(ctx).load()
    state = StateDir.for_config(config)
    state.ensure()
    engine = Engine(config.daemon.pulumi_bin)
    stack = config.stack(name)
    env = engine.environment(engine_target(stack, state))
    lines = [f'export PATH={shlex.quote(str(engine.bin_dir))}:"$PATH"']
    lines += [
        f"export {key}={shlex.quote(value)}" for key, value in env.items() if key not in stack.env
    ]
    lines.append(f"export PULUMI_STACK={shlex.quote(stack.stack)}")
    typer.echo("\n".join(lines))
