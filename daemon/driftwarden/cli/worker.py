"""`driftwarden worker`: distributed mode's long-running process (one per host)."""

from __future__ import annotations

from typing import Annotated

import typer

from driftwarden.cli._context import JsonLogs, app_state, handle_errors
from driftwarden.service import logs


@handle_errors
def worker_command(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Option("--name", help="This worker's name in logs and the queue (default: host)."),
    ] = None,
    json_logs: JsonLogs = None,
) -> None:
    """Run checks from the shared queue ([daemon] mode = "distributed") until stopped.

    One SIGTERM drains (running checks finish, none starts), a second cancels them (they
    run again on another worker); SIGHUP reloads the config. One worker of the fleet is
    elected scheduler through the database.
    """
    from driftwarden.config import find_config
    from driftwarden.hosts.distributed.host import Worker

    logs.configure(json_logs)
    worker = Worker(find_config(app_state(ctx).config_path), name=name)
    raise typer.Exit(worker.run())
