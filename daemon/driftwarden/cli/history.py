"""`driftwarden history`: operations, newest first."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.cli._format import iso, table
from driftwarden.service.runtime import Runtime
from driftwarden.store.models import Operation
from driftwarden.store.queries import history


def operation_dict(op: Operation) -> dict[str, Any]:
    return {
        "operation_id": op.id,
        "stack": op.stack,
        "check": op.kind,
        "trigger": op.trigger,
        "actor": op.actor,
        "status": op.status,
        "outcome": op.outcome,
        "started_at": iso(op.started_at),
        "finished_at": iso(op.finished_at),
        "duration_ms": op.duration_ms,
        "resource_changes": op.resource_changes,
        "property_changes": op.property_changes,
        "cli_version": op.cli_version,
        "error": op.error,
    }


@handle_errors
def history_command(
    ctx: typer.Context,
    stack: Annotated[str | None, typer.Option("--stack", help="Only this stack.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="How many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Operations (checks and remediations), newest first."""
    config = app_state(ctx).load()
    if stack is not None:
        config.stack(stack)  # a clear error for an unknown name
    runtime = Runtime.open_reader(config)
    with runtime.store.read() as session:
        operations = [operation_dict(op) for op in history(session, stack=stack, limit=limit)]
    if as_json:
        print_json({"operations": operations})
        return
    stdout.print(
        table(
            (
                "started",
                "stack",
                "check",
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
                    o["check"],
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
