"""`driftwarden scan`: run checks now, print what differs, exit 0/3/1."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from driftwarden.cli._complete import stack_names
from driftwarden.cli._context import app_state, handle_errors, print_json, stderr, stdout
from driftwarden.cli._format import short_value
from driftwarden.domain.errors import UsageError
from driftwarden.domain.model import Check, CheckStatus, Severity, describe_attribution
from driftwarden.domain.text import property_label, whole_resource

if TYPE_CHECKING:  # loaded by the command that runs, not by every command
    from driftwarden.drift.rules import Assessment
    from driftwarden.service.scan.check import CheckResult


class CheckChoice(StrEnum):
    DRIFT = "drift"
    CODE = "code"
    BOTH = "both"


STATUS_STYLE = {
    CheckStatus.IN_SYNC: "green",
    CheckStatus.DRIFTED: "bold yellow",
    CheckStatus.CHANGES_PENDING: "bold cyan",
    CheckStatus.FAILED: "bold red",
}


@handle_errors
def scan_command(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Stacks to scan (default: all).", autocompletion=stack_names),
    ] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Scan every configured stack.")] = False,
    check: Annotated[
        CheckChoice | None,
        typer.Option("--check", help="Which check to run (default: each stack's own checks)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print SPEC.md's JSON document.")] = False,
    no_wait: Annotated[
        bool,
        typer.Option("--no-wait", help="Fail at once if another process is scanning a stack."),
    ] = False,
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            min=1,
            max=64,
            help="Stacks scanned at once (default: [daemon] max_parallel).",
        ),
    ] = None,
    fail_on: Annotated[
        Severity | None,
        typer.Option(
            "--fail-on",
            help="Exit 3 only if a difference rates at least this severity (risk rules).",
        ),
    ] = None,
) -> None:
    """Run checks now, print the differences, exit 3 if any were found."""
    from driftwarden.api import Warden

    if all_stacks and names:
        raise UsageError("give stack names or --all, not both")
    checks = (
        None
        if check is None
        else (list(Check) if check is CheckChoice.BOTH else [Check(check.value)])
    )
    with Warden.open(app_state(ctx).config_path) as warden:
        if stdout.is_terminal and not as_json:
            with stderr.status("starting the Pulumi engine…") as status:

                def progress(stack: str, check: Check, message: str) -> None:
                    status.update(f"[bold]{escape(stack)}[/] {check.value}: {escape(message)}")

                report = warden.scan(names, checks=checks, parallel=parallel, wait=not no_wait,
                                     fail_on=fail_on, progress=progress)  # fmt: skip
        else:
            report = warden.scan(names, checks=checks, parallel=parallel, wait=not no_wait,
                                 fail_on=fail_on)  # fmt: skip
    if not as_json:
        for done in report.stacks:
            for remediation in done.remediations:
                stderr.print(f"remediation of {escape(done.stack)} ({remediation.mode}): "
                             f"{remediation.status}")  # fmt: skip
    for target, error in report.delivery.errors.items():
        stderr.print(f"[yellow]warning:[/] notification to {escape(target)} not delivered yet: "
                     f"{escape(error)}")  # fmt: skip
    if as_json:
        print_json(report.to_dict())
    else:
        render(report.results)
    raise typer.Exit(report.exit_code)


def render(results: Sequence[CheckResult]) -> None:
    table = Table(show_lines=False, pad_edge=False, box=None, header_style="bold")
    columns = ("stack", "check", "status", "severity", "resource", "property", "expected → actual",
               "attribution")  # fmt: skip
    for column in columns:
        table.add_column(column, overflow="fold")
    for result in results:
        style = STATUS_STYLE[result.status]
        status = f"[{style}]{result.status.value}[/]"
        head = [escape(result.stack), result.check.value, status]
        if result.error:
            table.add_row(*head, "", "", "", "see below", "")
            continue
        if not result.changes:
            table.add_row(*head, "", "", "", "", "")
            continue
        for change in result.changes:
            resource = escape(f"{change.name} ({change.change})")
            ratings = result.ratings.get(change.urn, {})
            cause = escape(describe_attribution(result.attributions.get(change.urn)))
            if not change.properties:
                rating = ratings.get("")
                table.add_row(*head, _severity(rating), resource, "",
                              whole_resource(change.change, result.check), cause)  # fmt: skip
                head = ["", "", ""]
                continue
            for prop in change.properties:
                detail = (
                    "[secret] → [secret]"
                    if prop.secret
                    else f"{short_value(prop.expected)} → {short_value(prop.actual)}"
                )
                where = escape(property_label(prop.path, prop.kind, prop.source))
                table.add_row(*head, _severity(ratings.get(prop.path)), resource, where,
                              escape(detail), cause)  # fmt: skip
                head, resource, cause = ["", "", ""], "", ""
    stdout.print(table)
    for result in results:
        if result.error:
            where = f"{escape(result.stack)} {result.check.value}"
            stdout.print(f"[red]failed:[/] {where}: {escape(result.error)}")
    failed = sum(r.status is CheckStatus.FAILED for r in results)
    differing = sum(r.status in (CheckStatus.DRIFTED, CheckStatus.CHANGES_PENDING) for r in results)
    stdout.print(
        f"\n{len(results)} checks: {len(results) - failed - differing} in sync, "
        f"{differing} with differences, {failed} failed"
    )


SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "dim",
}


def _severity(rating: Assessment | None) -> str:
    if rating is None:
        return ""
    value = rating.severity.value
    return f"[{SEVERITY_STYLE[rating.severity]}]{value}[/]"
