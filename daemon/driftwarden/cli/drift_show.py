"""`driftwarden drift show NAME`: a stack's open findings, property by property."""

from __future__ import annotations

from typing import Annotated

import typer

from driftwarden.cli._complete import stack_names
from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.cli._format import short_value, table
from driftwarden.domain.model import attribution_from_dict, describe_attribution, urn_name
from driftwarden.domain.text import property_label

drift_app = typer.Typer(help="Inspect findings.", no_args_is_help=True)


@drift_app.command("show")
@handle_errors
def show_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The stack.", autocompletion=stack_names)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The open findings of a stack: what differs, since when, how often seen."""
    from driftwarden.api import Warden

    with Warden.open_reader(app_state(ctx).config_path) as warden:
        findings = warden.findings(name)
    if as_json:
        print_json({"stack": name, "findings": findings})
        return
    if not findings:
        stdout.print(f"{name}: no open findings")
        return
    stdout.print(
        table(
            (
                "severity",
                "check",
                "resource",
                "property",
                "expected → actual",
                "first seen",
                "last seen",
                "seen",
                "attribution",
            ),
            [
                (
                    f["severity"] or "",
                    f["check"],
                    f"{urn_name(f['urn'])} ({f['change']})",
                    property_label(f["path"], f["kind"], f["source"]),
                    f"{short_value(f['expected'], f['secret'])} → "
                    f"{short_value(f['actual'], f['secret'])}"
                    if f["path"]
                    else f["change"],
                    f["first_seen"],
                    f["last_seen"],
                    f["occurrences"],
                    describe_attribution(attribution_from_dict(f["attribution"])),
                )
                for f in findings
            ],
        )
    )
