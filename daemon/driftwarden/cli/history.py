"""`driftwarden history`: operations, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from driftwarden.cli._complete import stack_names
from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.cli._format import short_value, table
from driftwarden.domain.model import urn_name


@handle_errors
def history_command(
    ctx: typer.Context,
    stack: Annotated[
        str | None, typer.Option("--stack", help="Only this stack.", autocompletion=stack_names)
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="How many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Operations (checks and remediations), newest first."""
    from driftwarden.api import Warden

    with Warden.open_reader(app_state(ctx).config_path) as warden:
        operations = warden.history(stack, limit=limit)
        changes = warden.state_changes(stack, limit=limit)
    if as_json:
        print_json({"operations": operations, "state_changes": changes})
        return
    stdout.print(
        table(
            (
                "started",
                "stack",
                "kind",
                "trigger",
                "actor",
                "status",
                "outcome",
                "changes",
                "duration",
                "operation",
            ),
            [
                (
                    o["started_at"],
                    o["stack"],
                    o["kind"],
                    o["trigger"],
                    o["actor"],
                    o["status"],
                    o["outcome"] or "",
                    f"{o['resource_changes']}/{o['property_changes']}",
                    "" if o["duration_ms"] is None else f"{o['duration_ms'] / 1000:.1f}s",
                    o["operation_id"],
                )
                for o in operations
            ],
        )
        if operations
        else "no operations recorded yet"
    )
    if changes:
        stdout.print("\nwhat each change of the state wrote (update, refresh, import, edit):")
        stdout.print(table(
            ("time", "stack", "change", "by", "severity", "resource", "property",
             "before → after"),
            [(c["time"][:19] + "Z", c["stack"], c["cause"], c["actor"],
              c["severity"] or "", f"{urn_name(c['urn'])} ({c['change']})", c["path"],
              "[secret] → [secret]" if c["secret"]
              else f"{short_value(c['before'])} → {short_value(c['after'])}")
             for c in changes],
            max_widths={"by": 24},
        ))  # fmt: skip
