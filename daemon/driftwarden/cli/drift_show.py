"""`driftwarden drift show NAME`: a stack's open findings, property by property."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.cli._format import property_label, short_value, table
from driftwarden.domain.model import attribution_from_dict, describe_attribution, urn_name
from driftwarden.drift.rules import severity_rank
from driftwarden.service.runtime import Runtime
from driftwarden.service.views import iso
from driftwarden.store.models import Finding
from driftwarden.store.queries import open_findings

drift_app = typer.Typer(help="Inspect findings.", no_args_is_help=True)


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "finding_id": finding.id,
        "check": finding.check,
        "urn": finding.urn,
        "type": finding.type,
        "change": finding.change,
        "path": finding.path,
        "kind": finding.kind,
        "expected": finding.expected,
        "actual": finding.actual,
        "secret": finding.secret,
        "source": finding.source,
        "severity": finding.severity,
        "rule": finding.rule,
        "needs_approval": finding.approval_requested_at is not None,
        "attribution": finding.attribution,
        "first_seen": iso(finding.first_seen),
        "last_seen": iso(finding.last_seen),
        "occurrences": finding.occurrences,
        "last_operation_id": finding.last_operation_id,
    }


@drift_app.command("show")
@handle_errors
def show_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The stack.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The open findings of a stack: what differs, since when, how often seen."""
    config = app_state(ctx).load()
    config.stack(name)
    runtime = Runtime.open_reader(config)
    with runtime.store.read() as session:
        findings = [finding_dict(f) for f in open_findings(session, name)]
    # The most dangerous first.
    findings.sort(key=lambda f: -severity_rank(f["severity"]))
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
