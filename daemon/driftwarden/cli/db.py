"""`driftwarden db upgrade|prune`: schema migrations and retention."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer

from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.domain.errors import UsageError
from driftwarden.domain.schedule import parse_duration

db_app = typer.Typer(help="Manage the audit store.", no_args_is_help=True)


@db_app.command("upgrade")
@handle_errors
def upgrade_command(ctx: typer.Context) -> None:
    """Apply pending schema migrations (also done automatically on start)."""
    from driftwarden.api import Warden

    with Warden.open(app_state(ctx).config_path) as warden:
        done = warden.upgrade()
    stdout.print(f"schema at revision {done['revision']} ({done['database_url']})")


@db_app.command("prune")
@handle_errors
def prune_command(
    ctx: typer.Context,
    older_than: Annotated[
        str, typer.Option("--older-than", help="Age, e.g. 180d, 12h.", show_default=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delete old operations and their changes; never audit events or open findings."""
    from driftwarden.api import Warden

    try:
        age = timedelta(seconds=parse_duration(older_than))
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None
    with Warden.open(app_state(ctx).config_path) as warden:
        data = warden.prune(age)
    if as_json:
        print_json(data)
    else:
        cutoff = datetime.fromisoformat(data["cutoff"])
        stdout.print(
            f"pruned {data['operations']} operations, {data['resource_changes']} resource and "
            f"{data['property_changes']} property changes started before "
            f"{cutoff:%Y-%m-%dT%H:%M:%SZ}"
        )
