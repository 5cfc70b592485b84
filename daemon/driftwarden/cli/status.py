"""`driftwarden status`: one row per stack: state, open findings, last scan, next scan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.cli._format import iso, table
from driftwarden.model import Check, stack_state
from driftwarden.service.runtime import Runtime
from driftwarden.store.queries import stack_summaries


@handle_errors
def status_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One row per configured stack: state, open findings, last and next scan."""
    config = app_state(ctx).load()
    runtime = Runtime.open_reader(config)
    now = datetime.now(UTC)
    with runtime.store.read() as session:
        summaries = stack_summaries(
            session, [stack.name for stack in config.stacks], [check.value for check in Check]
        )
    rows: list[dict[str, Any]] = []
    for stack, summary in zip(config.stacks, summaries, strict=True):
        last = summary.last_scan
        rows.append(
            {
                "stack": stack.name,
                "state": stack_state((op.status, op.outcome) for op in summary.latest.values()),
                "open_findings": summary.open_findings,
                "last_scan": iso(last),
                "next_scan": iso(config.schedule_of(stack).next_run(last, now)),
                "checks": {
                    kind: {
                        "operation_id": op.id,
                        "status": op.status,
                        "outcome": op.outcome,
                        "started_at": iso(op.started_at),
                        "error": op.error,
                    }
                    for kind, op in summary.latest.items()
                },
            }
        )
    if as_json:
        print_json({"stacks": rows})
        return
    stdout.print(
        table(
            ("stack", "state", "open findings", "last scan", "next scan"),
            [
                (
                    r["stack"],
                    r["state"],
                    r["open_findings"],
                    r["last_scan"] or "never",
                    r["next_scan"],
                )
                for r in rows
            ],
        )
    )
