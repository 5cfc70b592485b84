"""`driftwarden remediate NAME --mode refresh|up [--dry-run] [--yes]`: guarded remediation."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from driftwarden.cli._complete import stack_names
from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.cli._format import short_value, table
from driftwarden.domain.errors import UsageError
from driftwarden.domain.model import urn_name

if TYPE_CHECKING:  # loaded by the command that runs, not by every command
    from driftwarden.service.scan.remediate import Remediation


class Mode(StrEnum):
    REFRESH = "refresh"
    UP = "up"


def show_plan(result: Remediation) -> None:
    rows = []
    for change in result.plan:
        if not change.properties:
            rows.append((urn_name(change.urn), change.change, "", ""))
        for prop in change.properties:
            rows.append((urn_name(change.urn), change.change, f"{prop.path} ({prop.kind})",
                         f"{short_value(prop.expected, prop.secret)} → "
                         f"{short_value(prop.actual, prop.secret)}"))  # fmt: skip
    stdout.print(f"plan ({result.mode}) for {escape(result.stack)}:")
    if result.mode == "refresh":
        stdout.print("refresh accepts whatever is live when it runs, which can differ from "
                     "this preview; `--mode up` applies exactly the plan shown")  # fmt: skip
    stdout.print(table(("resource", "change", "property", "before → after"), rows))
    if result.verdict.allowed:
        stdout.print("[green]guardrails: allowed[/]")
    for reason in result.verdict.reasons:
        stdout.print(f"[red]guardrail refuses:[/] {escape(reason)}")
    if result.remaining:
        what = "still differs" if result.apply_operation_id else "the plan does not undo"
        stdout.print(f"[red]{what}:[/] " + escape(", ".join(result.remaining)))


@handle_errors
def remediate_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The stack.", autocompletion=stack_names)],
    mode: Annotated[Mode, typer.Option("--mode", help="refresh: accept live values; up: enforce.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Approve without asking.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Preview the remediation, check its guardrails, and (approved) apply and verify it."""
    from driftwarden.api import Warden

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    confirm = None
    with Warden.open(app_state(ctx).config_path) as warden:
        warden.config.stack(name)  # an unknown name before the refusal below
        if not dry_run and not yes:
            if not interactive:
                raise UsageError(
                    "refusing to remediate without --yes when not on a terminal",
                    hint=f"review with `driftwarden remediate {name} --mode {mode.value} "
                    "--dry-run`, then add --yes",
                )

            def confirm(planned: Remediation) -> bool:
                """The user approves the plan that will be applied, not a second one."""
                show_plan(planned)
                return typer.confirm(f"apply this {mode.value} to {name}?", default=False)

        result = warden.remediate(name, mode=mode.value, dry_run=dry_run, confirm=confirm)
    if as_json:
        print_json(result.to_dict())
    else:
        if confirm is None or result.status != "declined":
            show_plan(result)
        stdout.print(
            f"status: {result.status}" + (f" ({escape(result.error)})" if result.error else "")
        )
    raise typer.Exit({"succeeded": 0, "dry_run": 0, "nothing_to_do": 0}.get(result.status, 1))


__all__ = ["remediate_command"]
