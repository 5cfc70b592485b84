"""`driftwarden notify test|list|send|digest`: try targets, show and drain the outbox,
send a digest of what is still open."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from driftwarden.cli._complete import target_names
from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.cli._format import table
from driftwarden.domain.errors import DriftwardenError, UsageError
from driftwarden.domain.model import NotificationStatus

notify_app = typer.Typer(help="Notification targets and the outbox.", no_args_is_help=True)


@notify_app.command("test")
@handle_errors
def send_test_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Send a test message to every configured target and report each result."""
    from driftwarden.notify.deliver import Delivery, deliver
    from driftwarden.notify.render import render_test
    from driftwarden.service.messages.notifications import target_config_files, target_urls
    from driftwarden.service.runtime import Runtime
    from driftwarden.store.outbox import record_test_message

    config = app_state(ctx).load()
    if not config.targets:
        raise DriftwardenError(
            f"{config.source}: no notification targets", hint="add a [[targets]] entry"
        )
    runtime = Runtime.open(config)
    results: list[dict[str, Any]] = []
    for target in config.targets:
        try:
            delivery = deliver(
                target_urls(target), render_test(target.name),
                config_files=target_config_files(target),
            )  # fmt: skip
        except DriftwardenError as exc:
            delivery = Delivery(False, str(exc))
        results.append({"target": target.name, "ok": delivery.ok, "error": delivery.error})
        with runtime.store.write() as session:
            record_test_message(
                session, runtime.store.audit, actor=runtime.actor, target=target.name,
                sent=delivery.ok, error=delivery.error,
            )  # fmt: skip
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
    from driftwarden.service.read.views import iso
    from driftwarden.service.runtime import Runtime
    from driftwarden.store.outbox import list_notifications

    runtime = Runtime.open_reader(app_state(ctx).load())
    with runtime.store.read() as session:
        rows = [
            {
                "notification_id": n.id, "target": n.target, "event": n.event, "stack": n.stack,
                "operation_id": n.operation_id, "title": n.title, "status": n.status,
                "attempts": n.attempts, "created_at": iso(n.created_at),
                "sent_at": iso(n.sent_at), "next_attempt_at": iso(n.next_attempt_at),
                "last_error": n.last_error, "idempotency_key": n.idempotency_key,
            }
            for n in list_notifications(session, status=status.value if status else None,
                                        limit=limit)
        ]  # fmt: skip
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
    from driftwarden.service.messages.digest import queue_digest
    from driftwarden.service.messages.notifications import deliver_due
    from driftwarden.service.runtime import Runtime

    config = app_state(ctx).load()
    if targets:
        chosen = []
        for name in dict.fromkeys(targets):
            target = config.target(name)
            if target is None:
                known = ", ".join(t.name for t in config.targets) or "none configured"
                raise UsageError(f"no target named {name!r}", hint=f"known targets: {known}")
            chosen.append(target)
    else:
        chosen = [target for target in config.targets if target.digest is not None]
        if not chosen:
            raise UsageError(
                f"{config.source}: no target has a digest schedule",
                hint='set digest = "daily at 09:00" on a [[targets]] entry, or use --target NAME',
            )
    runtime = Runtime.open(config)
    results = [queue_digest(runtime.store, config, target) for target in chosen]
    report = deliver_due(runtime.store, config, runtime.actor)
    rows = [
        {"target": r.target, "status": r.status, "stacks": r.stacks, "findings": r.findings,
         "notification_id": r.notification_id, "error": report.errors.get(r.target)}
        for r in results
    ]  # fmt: skip
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
