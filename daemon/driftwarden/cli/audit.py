"""`driftwarden audit verify|export`: check and export the tamper-evident chain."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape

from driftwarden.cli._complete import stack_names
from driftwarden.cli._context import app_state, fail, handle_errors, print_json, stdout
from driftwarden.cli._format import table
from driftwarden.domain.errors import StoreError, UsageError
from driftwarden.domain.model import urn_name
from driftwarden.domain.schedule import DurationRangeError, parse_duration

audit_app = typer.Typer(help="Verify and export the audit chain.", no_args_is_help=True)

AUDIT_BROKEN = 4
# Pages beyond this would ask the database for an offset past its integers.
MAX_PAGE = 1_000_000_000
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
    from driftwarden.service.runtime import Runtime

    expected = None
    if expect_head is not None:
        match = _HEAD.match(expect_head.strip().lower())
        if not match:
            raise UsageError(
                f"--expect-head {expect_head!r} is not SEQ:HASH",
                hint="use the head `audit verify` printed, e.g. 4000:3f9a… (64 hex digits)",
            )
        expected = (int(match.group(1)), match.group(2))
    config = app_state(ctx).load()
    try:
        runtime = Runtime.open_reader(config)
        report = runtime.store.audit.verify(runtime.store, expect_head=expected)
    except StoreError as exc:  # missing or damaged: not verified, which is not "ok"
        raise fail(escape(str(exc)), AUDIT_BROKEN) from None
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
    from driftwarden.service.runtime import Runtime

    runtime = Runtime.open_reader(app_state(ctx).load())
    if fmt is ExportFormat.JSONL:
        runtime.store.audit.export_jsonl(runtime.store, sys.stdout)


def _summary(details: Any) -> str:
    if not isinstance(details, dict):
        return ""
    if "resource_changes" in details and "message" in details:  # a stack update
        counts = ", ".join(f"{op} {n}" for op, n in sorted(details["resource_changes"].items()))
        return f"{details.get('kind')} {details.get('result')}: {counts or 'no changes'}"
    # A resource by its name: the URN (in `--json`) would fill the column.
    values = {**details, "resource": urn_name(details["urn"])} if details.get("urn") else details
    parts = [f"{key}={values[key]}" for key in ("kind", "resource", "path", "target", "mode",
                                                "error") if values.get(key)]  # fmt: skip
    return " ".join(parts)


@audit_app.command("log")
@handle_errors
def log_command(
    ctx: typer.Context,
    stack: Annotated[
        str | None, typer.Option("--stack", help="Only this stack.", autocompletion=stack_names)
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="A date (2026-11-01) or an age (7d, 12h).")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Actors containing this.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="Per page.")] = 50,
    page: Annotated[
        int, typer.Option("--page", min=1, max=MAX_PAGE, help="Page, newest first.")
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One timeline, newest first: operations, stack updates, findings, remediations, messages."""
    from driftwarden.service.runtime import Runtime
    from driftwarden.service.views import audit_event_view
    from driftwarden.store.queries import audit_log

    config = app_state(ctx).load()
    if stack is not None:
        config.stack(stack)
    cutoff = None
    if since is not None:
        try:
            cutoff = datetime.now(UTC) - timedelta(seconds=parse_duration(since))
        except DurationRangeError as exc:
            raise UsageError(f"--since: {exc}") from None
        except ValueError:
            try:
                cutoff = datetime.fromisoformat(since)
            except ValueError:
                raise UsageError(
                    f"--since {since!r} is neither a date nor an age",
                    hint="use e.g. 2026-11-01, 2026-11-01T08:00:00Z, 7d or 12h",
                ) from None
            if cutoff.tzinfo is None:
                cutoff = cutoff.replace(tzinfo=UTC)
    runtime = Runtime.open_reader(config)
    with runtime.store.read() as session:
        events = audit_log(session, stack=stack, since=cutoff, actor=actor, limit=limit,
                           offset=(page - 1) * limit)  # fmt: skip
        rows = [audit_event_view(event) for event in events]
    if as_json:
        print_json({"events": rows, "page": page, "limit": limit})
        return
    stdout.print(
        table(
            ("time", "actor", "activity", "stack", "outcome", "summary"),
            [
                (
                    r["time"],
                    r["actor"],
                    r["action"],
                    r["stack"] or "",
                    r["outcome"] or "",
                    _summary(r["details"]),
                )
                for r in rows
            ],
            max_widths={"actor": 24, "stack": 16},
            no_wrap=("time", "activity", "outcome"),
        )
        if rows
        else "no audit events match"
    )
