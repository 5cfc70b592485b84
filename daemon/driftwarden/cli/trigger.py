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
    from driftwarden.service.runtime import Runtime
    from driftwarden.store.requests import request_scan

    config = app_state(ctx).load()
    stacks = [config.stack(name) for name in dict.fromkeys(names)]
    checks = None
    if check is not None:
        checks = [c.value for c in Check] if check is CheckChoice.BOTH else [check.value]
    runtime = Runtime.open(config)
    with runtime.store.write() as session:
        requests = [
            request_scan(session, runtime.store.audit, stack=s.name, checks=checks,
                         actor=runtime.actor)
            for s in stacks
        ]  # fmt: skip
    if as_json:
        print_json({"requests": [
            {"request_id": r.id, "stack": r.stack, "requested_at": r.requested_at.isoformat()}
            for r in requests
        ]})  # fmt: skip
        return
    for request in requests:
        stdout.print(f"requested a scan of {request.stack} ({request.id})")
    stdout.print("the daemon picks requests up within seconds: see `driftwarden history`")
