"""`driftwarden status`: one row per stack: state, open findings, last scan, next scan."""

from __future__ import annotations

from typing import Annotated

import typer

from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.cli._format import table


@handle_errors
def status_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One row per configured stack: state, open findings, last and next scan."""
    from driftwarden.service.runtime import Runtime
    from driftwarden.service.views import status_view

    config = app_state(ctx).load()
    runtime = Runtime.open_reader(config)
    rows = status_view(config, runtime.store)
    if as_json:
        print_json({"stacks": rows})
        return
    running = any(r["running_on"] for r in rows)  # a column only while checks run
    stdout.print(
        table(
            ("stack", "state", "open findings", "last scan", "next scan")
            + (("running on",) if running else ()),
            [
                (
                    r["stack"],
                    r["state"],
                    r["open_findings"],
                    r["last_scan"] or "never",
                    r["next_scan"],
                )
                + ((", ".join(r["running_on"]),) if running else ())
                for r in rows
            ],
        )
    )
