"""`driftwarden notify test|list|send|digest`: try targets, show and drain the outbox,
send a digest of what is still open."""

from __future__ import annotations

from typing import Annotated

import typer

from driftwarden.cli._complete import target_names
from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.cli._format import table
from driftwarden.domain.model import NotificationStatus

notify_app = typer.Typer(help="Notification targets and the outbox.", no_args_is_help=True)


@notify_app.command("test")
@handle_errors
def send_test_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Send a test message to every configured target and report each result."""
    from driftwarden.api import Warden

    with Warden.open(app_state(ctx).config_path) as warden:
        results = warden.notify_test()
    if as_json:
        print_json({"results": results})
    else:
        for result in results:
            mark = "[green]ok[/]" if result["ok"] else "[red]failed[/]"
            stdout.print(
                f"{mark} {result['target']}" + (f": {result['error']}" if result["error"] else "")
            )
    if not all(result["ok"] for result in results):
        raise typer.Exit(1)


@notify_app.command("list")
@handle_errors
def list_command(
    ctx: typer.Context,
    status: Annotated[
        NotificationStatus | None, typer.Option("--status", help="Only these.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Queued, sent and failed messages, newest first."""
    from driftwarden.api import Warden

    with Warden.open_reader(app_state(ctx).config_path) as warden:
        rows = warden.notifications(status, limit=limit)
    if as_json:
        print_json({"notifications": rows})
        return
    stdout.print(
        table(
            ("created", "target", "event", "stack", "status", "attempts", "title", "last error"),
            [
                (
                    r["created_at"],
                    r["target"],
                    r["event"],
                    r["stack"],
                    r["status"],
                    r["attempts"],
                    r["title"],
                    r["last_error"] or "",
                )
                for r in rows
            ],
        )
        if rows
        else "no notifications"
    )


@notify_app.command("send")
@handle_errors
def send_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Deliver every due message in the outbox now (what `scan` and the daemon do)."""
    from driftwarden.api import Warden

    with Warden.open(app_state(ctx).config_path) as warden:
        report = warden.deliver()
    data = {"sent": report.sent, "retrying": report.retrying, "failed": report.failed,
            "errors": report.errors}  # fmt: skip
    if as_json:
        print_json(data)
    else:
        stdout.print(f"sent {report.sent}, retrying {report.retrying}, failed {report.failed}")
        for target, error in report.errors.items():
            stdout.print(f"[red]{target}[/]: {error}")


@notify_app.command("digest")
@handle_errors
def digest_command(
    ctx: typer.Context,
    targets: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            help="This target (repeatable; default: every target with a digest schedule).",
            autocompletion=target_names,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Send the digest of everything still open now, as the daemon does on schedule."""
    from driftwarden.api import Warden

    with Warden.open(app_state(ctx).config_path) as warden:
        rows = warden.digest(targets)
    if as_json:
        print_json({"digests": rows})
    else:
        for row in rows:
            if row["status"] == "nothing_open":
                stdout.print(f"{row['target']}: nothing open, no digest sent")
                continue
            what = f"{row['findings']} findings on {row['stacks']} stacks"
            if row["error"]:
                stdout.print(f"[red]{row['target']}[/]: {what}, not delivered: {row['error']}")
            else:
                stdout.print(f"[green]{row['target']}[/]: {what} ({row['status']})")
    if any(row["error"] for row in rows):
        raise typer.Exit(1)
