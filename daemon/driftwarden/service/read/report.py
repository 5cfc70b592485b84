"""`driftwarden report`: the fleet's drift as one standalone document, for a change review
or an audit. One set of data (`report_data`, the same dictionaries `status`, `drift show`
and `audit verify` print as JSON), three forms: JSON, Markdown that pastes into a pull
request or ticket, and HTML with inline CSS and no external asset.

Secret values never reach it in clear: a secret finding's values are stored as
`[secret]`, and the report prints what the store holds.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from driftwarden.domain import markdown as md
from driftwarden.domain.model import (
    attribution_from_dict,
    describe_attribution,
    urn_name,
)
from driftwarden.domain.text import SEVERITIES, json_value, property_label
from driftwarden.domain.version import __version__
from driftwarden.service.read.views import findings_view, iso, status_view
from driftwarden.service.runtime import Runtime
from driftwarden.service.scan.check import select_stacks

# A value longer than this is cut in the Markdown form (a PR comment has a size limit);
# the HTML and JSON forms keep it whole.
MARKDOWN_VALUE_CHARS = 300


class ReportFormat(StrEnum):
    HTML = "html"
    MD = "md"
    JSON = "json"


def report_data(
    runtime: Runtime, names: Sequence[str] = (), now: datetime | None = None
) -> dict[str, Any]:
    """The report of the named stacks (all when none): summary, stacks, their open
    findings, and the audit chain's head with a fresh verify."""
    now = now or datetime.now(UTC)
    config = runtime.config
    wanted = [stack.name for stack in select_stacks(config, names)]
    rows = {row["stack"]: row for row in status_view(config, runtime.store, now)}
    stacks = []
    for name in wanted:
        findings = findings_view(runtime.store, name)
        stacks.append(rows[name] | {"findings": findings})
    states = Counter(stack["state"] for stack in stacks)
    severities = Counter(
        finding["severity"] or "unrated" for stack in stacks for finding in stack["findings"]
    )
    verify = runtime.store.audit.verify(runtime.store)
    return {
        "generated_at": iso(now),
        "generated_by": runtime.actor,
        "driftwarden_version": __version__,
        "summary": {
            "stacks": len(stacks),
            "states": dict(sorted(states.items())),
            "open_findings": sum(severities.values()),
            "open_findings_by_severity": {
                severity: severities[severity]
                for severity in [*SEVERITIES, "unrated"]
                if severities[severity]
            },
        },
        "stacks": stacks,
        "audit": verify.to_dict(),
    }


def render(data: dict[str, Any], form: ReportFormat) -> str:
    if form is ReportFormat.JSON:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if form is ReportFormat.MD:
        return markdown(data)
    return html(data)


# --- the shared wording ----------------------------------------------------------------


def _value(value: Any, secret: bool) -> str:
    return json_value(value, secret=secret)


def _difference(finding: dict[str, Any]) -> tuple[str, str]:
    """(what, how): the resource and property, and expected → actual (or the change)."""
    what = urn_name(finding["urn"])
    label = property_label(finding["path"], finding["kind"], finding["source"])
    if label:
        what = f"{what} · {label}"
    if not finding["path"]:
        return what, finding["change"]
    expected = _value(finding["expected"], finding["secret"])
    actual = _value(finding["actual"], finding["secret"])
    return what, f"{expected} → {actual}"


def _attribution(finding: dict[str, Any]) -> str:
    return describe_attribution(attribution_from_dict(finding["attribution"])) or "unknown"


def _audit_line(audit: dict[str, Any]) -> str:
    head = f"{audit['head_seq']}:{audit['head_hash']}"
    if audit["ok"]:
        return f"verified: {audit['events_checked']} events, head {head}"
    return (f"BROKEN at seq {audit['first_bad_seq']} ({audit['problem']}): {audit['detail']}; "
            f"last good head {head}")  # fmt: skip


FINDINGS_HEADER = (
    "| severity | check | difference | expected → actual | attribution | first seen | seen |"
)

# --- Markdown --------------------------------------------------------------------------


def _md_code(text: str) -> str:
    return md.code(text, cell=True, limit=MARKDOWN_VALUE_CHARS)


def markdown(data: dict[str, Any]) -> str:
    summary = data["summary"]
    by_severity = ", ".join(f"{n} {s}" for s, n in summary["open_findings_by_severity"].items())
    states = ", ".join(f"{n} {state}" for state, n in summary["states"].items())
    lines = [
        "# Drift report",
        "",
        f"Generated {data['generated_at']} by {md.escape(data['generated_by'], cell=True)} "
        f"(driftwarden {data['driftwarden_version']}).",
        "",
        f"**{summary['stacks']} stacks** ({states or 'none'}); "
        f"**{summary['open_findings']} open findings**"
        + (f" ({by_severity})" if by_severity else "")
        + ".",
        "",
        f"Audit chain: {md.escape(_audit_line(data['audit']), cell=True)}.",
        "",
        "| stack | state | open findings | last scan | next scan |",
        "|---|---|---:|---|---|",
    ]
    for stack in data["stacks"]:
        lines.append(f"| {md.escape(stack['stack'], cell=True)} | {stack['state']} | "
                     f"{stack['open_findings']} | {stack['last_scan'] or 'never'} | "
                     f"{stack['next_scan']} |")  # fmt: skip
    for stack in data["stacks"]:
        if not stack["findings"]:
            continue
        lines += [
            "",
            f"## {md.escape(stack['stack'], cell=True)}",
            "",
            FINDINGS_HEADER,
            "|---|---|---|---|---|---|---:|",
        ]
        for finding in stack["findings"]:
            what, how = _difference(finding)
            # Values a stack's owners or intruders wrote (tag keys, update authors) go in
            # code spans: shown as typed, never a link, image or mention in the PR.
            lines.append(
                f"| {finding['severity'] or 'unrated'} | {finding['check']} | {_md_code(what)} | "
                f"{_md_code(how)} | {_md_code(_attribution(finding))} | "
                f"{finding['first_seen']} | {finding['occurrences']} |"
            )
    return "\n".join(lines) + "\n"


# --- HTML ------------------------------------------------------------------------------


def html(data: dict[str, Any]) -> str:
    """One file, inline CSS, every value escaped by the template engine (autoescape)."""
    import jinja2  # only the HTML form needs it

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("driftwarden.service.read", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["difference"] = _difference
    environment.filters["attribution"] = _attribution
    environment.filters["audit_line"] = _audit_line
    return environment.get_template("report.html.j2").render(report=data, severities=SEVERITIES)
