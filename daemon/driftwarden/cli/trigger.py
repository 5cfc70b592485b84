"""`driftwarden trigger`: ask the running daemon to scan now."""

from __future__ import annotations

from typing import Annotated

import typer

from driftwarden.cli._complete import stack_names
from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.cli.scan import CheckChoice
from driftwarden.domain.model import Check


@handle_errors
def trigger_command(
    ctx: typer.Context,
    names: Annotated[
        list[str], typer.Argument(help="Stacks to scan now.", autocompletion=stack_names)
    ],
    check: Annotated[
        CheckChoice | None, typer.Option("--check", help="Which check (default: the stack's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the request ids as JSON.")] = False,
) -> None:
    """Queue scans for the running daemon; it picks them up within seconds."""
    from driftwarden.api import Warden

    checks = None
    if check is not None:
        checks = list(Check) if check is CheckChoice.BOTH else [Check(check.value)]
    with Warden.open(app_state(ctx).config_path) as warden:
        requests = warden.trigger(names, checks=checks)
    if as_json:
        print_json({"requests": requests})
        return
    for request in requests:
        stdout.print(f"requested a scan of {request['stack']} ({request['request_id']})")
    stdout.print("the daemon picks requests up within seconds: see `driftwarden history`")
