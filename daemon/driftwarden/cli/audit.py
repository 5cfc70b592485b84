"""`driftwarden audit verify|export`: check and export the tamper-evident chain."""

from __future__ import annotations

import re
import sys
from enum import StrEnum
from typing import Annotated

import typer

from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.errors import UsageError
from driftwarden.service.runtime import Runtime

audit_app = typer.Typer(help="Verify and export the audit chain.", no_args_is_help=True)

AUDIT_BROKEN = 4
_HEAD = re.compile(r"^(\d+):([0-9a-f]{64})$")


class ExportFormat(StrEnum):
    JSONL = "jsonl"


@audit_app.command("verify")
@handle_errors
def verify_command(
    ctx: typer.Context,
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            metavar="SEQ:HASH",
            help="A head recorded earlier (logs, notifications): detects a cut-off tail.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Recompute every link of the chain; exit 4 if it is broken."""
    expected = None
    if expect_head is not None:
        match = _HEAD.match(expect_head.strip().lower())
        if not match:
            raise UsageError(
                f"--expect-head {expect_head!r} is not SEQ:HASH",
                hint="use the head `audit verify` printed, e.g. 4000:3f9a… (64 hex digits)",
            )
        expected = (int(match.group(1)), match.group(2))
    runtime = Runtime.open(app_state(ctx).load())
    report = runtime.store.audit.verify(runtime.store, expect_head=expected)
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        stdout.print(
            f"[green]ok[/]: {report.events_checked} events verified; "
            f"head {report.head_seq}:{report.head_hash}"
        )
    else:
        stdout.print(
            f"[bold red]BROKEN[/] at seq {report.first_bad_seq} ({report.problem}): "
            f"{report.detail}; {report.events_checked} events checked"
        )
    if not report.ok:
        raise typer.Exit(AUDIT_BROKEN)


@audit_app.command("export")
@handle_errors
def export_command(
    ctx: typer.Context,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="Output format.")] = (
        ExportFormat.JSONL
    ),
) -> None:
    """Stream every audit event, one JSON object per line (OCSF API Activity style)."""
    runtime = Runtime.open(app_state(ctx).load())
    if fmt is ExportFormat.JSONL:
        runtime.store.audit.export_jsonl(runtime.store, sys.stdout)
