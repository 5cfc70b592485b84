"""`driftwarden status`: one row per stack: state, open findings, last scan, next scan."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.cli._format import table


@handle_errors
def status_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One row per configured stack: state, open findings, last and next scan."""
    from driftwarden.api import Warden

    with Warden.open_reader(app_state(ctx).config_path) as warden:
        status = warden.status()
    if as_json:
        print_json(status)
        return
    rows, sources, trust = status["stacks"], status.get("audit_sources", []), status["audit"]
    running = any(r["running_on"] for r in rows)  # a column only while checks run
    stdout.print(
        table(
            ("stack", "state", "open findings", "last scan", "next scan")
            + (("running on",) if running else ()),
            [
                (
                    r["stack"],
                    r["state"],
                    r["open_findings"],
                    r["last_scan"] or "never",
                    r["next_scan"],
                )
                + ((", ".join(r["running_on"]),) if running else ())
                for r in rows
            ],
        )
    )
    for source in sources:
        stdout.print(_source_line(source))
    if trust["last_digest_at"]:
        stdout.print(
            f"audit chain: head {trust['head']}, last signed digest {trust['last_digest_at']}"
        )
    for target in trust["forward"]:
        state = "up to date" if not target["behind"] else f"{target['behind']:,} events behind"
        error = f"; failing: {target['last_error']}" if target["failures"] else ""
        stdout.print(f"audit forward {target['name']} ({target['url']}): {state}{error}")


def _source_line(source: dict[str, Any]) -> str:
    """`audit source cluster (log): 1,204 events kept, newest 21:45:10Z, read 21:45:11Z`"""
    line = (f"audit source {source['source']} ({', '.join(source['feeds'])}): "
            f"{source['kept']:,} events kept, newest {source['last_event_at'] or 'none yet'}, "
            f"read {source['last_read_at'] or 'never'}")  # fmt: skip
    errors = {k: v for k, v in (source["platform_errors"] or {}).items() if v}
    if errors:
        line += "; INCOMPLETE: the platform failed to write " + ", ".join(
            f"{count} events ({plugin})" for plugin, count in errors.items()
        )
    if source["lost"]:
        line += f"; a log rotated away unread {source['lost']} time(s)"
    return line
