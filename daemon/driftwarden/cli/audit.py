"""`driftwarden audit verify|export`: check and export the tamper-evident chain."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
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
    OCSF = "ocsf"
    NATIVE = "native"
    JSONL = "jsonl"  # the earlier name of ocsf


def _head(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    match = _HEAD.match(value.strip().lower())
    if not match:
        raise UsageError(
            f"--expect-head {value!r} is not SEQ:HASH",
            hint="use the head `audit verify` printed, e.g. 4000:3f9a… (64 hex digits)",
        )
    return int(match.group(1)), match.group(2)


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
    public_keys: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            metavar="FILE",
            help="Check the signed digests with this public key (repeat for rotated keys); "
            "no audit key needed.",
        ),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            metavar="FILE",
            help="With --public-key: check a native export (`audit export --format native`, "
            "- for stdin) instead of the store.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Recompute every link of the chain (the audit key), or check its signed digests
    (--public-key); exit 4 if it is broken."""
    from driftwarden.api import Warden

    expected = _head(expect_head)
    if public_keys:
        _verify_signed(ctx, public_keys, export, expected, as_json)
        return
    if export is not None:
        raise UsageError("--export needs --public-key", hint="give the signer's public key")
    with Warden.open_reader(app_state(ctx).config_path) as warden:
        try:
            report = warden.verify(expect_head=expected)
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


def _verify_signed(
    ctx: typer.Context,
    public_keys: list[Path],
    export: Path | None,
    expected: tuple[int, str] | None,
    as_json: bool,
) -> None:
    from driftwarden.api import Warden

    if export is not None:  # no config, no database: the export and the keys
        source = sys.stdin if str(export) == "-" else export
        report = Warden.verify_export(source, public_keys, expect_head=expected)
    else:
        with Warden.open_reader(app_state(ctx).config_path) as warden:
            try:
                report = warden.verify(expect_head=expected, public_keys=public_keys)
            except StoreError as exc:
                raise fail(escape(str(exc)), AUDIT_BROKEN) from None
    if as_json:
        print_json(report.to_dict())
    else:
        if report.ok:
            stdout.print(
                f"[green]ok[/]: {report.digests} digests verified with the public key; "
                f"events 1..{report.signed_through} are signed; head "
                f"{report.head_seq}:{report.head_hash}"
            )
        else:
            stdout.print(
                f"[bold red]BROKEN[/] at seq {report.first_bad_seq} ({report.problem}): "
                f"{escape(report.detail or '')}; {report.digests} digests verified before it"
            )
        for note in report.notes:
            stdout.print(f"note: {escape(note)}")
        for item in report.unproven:
            stdout.print(f"not proven without the audit key: {escape(item)}")
    if not report.ok:
        raise typer.Exit(AUDIT_BROKEN)


@audit_app.command("export")
@handle_errors
def export_command(
    ctx: typer.Context,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="ocsf: OCSF API Activity records; native: the events as the chain hashes "
            "them (what `audit verify --public-key --export` checks).",
        ),
    ] = ExportFormat.OCSF,
) -> None:
    """Stream every audit event (digests included), one JSON object per line."""
    from driftwarden.api import Warden

    with Warden.open_reader(app_state(ctx).config_path) as warden:
        warden.export(sys.stdout, format="native" if fmt is ExportFormat.NATIVE else "ocsf")


@audit_app.command("keygen")
@handle_errors
def keygen_command(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE",
            help="Where to write the private key (default: where the daemon looks for it); "
            "the public key goes to FILE.pub.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Generate the Ed25519 key pair that signs the audit digests."""
    from driftwarden.api import Warden

    result = Warden.keygen(out, config=app_state(ctx).config_path, force=force)
    if as_json:
        print_json(result)
        return
    stdout.print(f"private key: {escape(result['private_key'])} (0600: keep it on this host, "
                 "or as the systemd credential audit-signing-key)")  # fmt: skip
    stdout.print(f"public key:  {escape(result['public_key'])} (give it to your auditors)")
    stdout.print(f"fingerprint: {result['fingerprint']}")


@audit_app.command("digest")
@handle_errors
def digest_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Sign a digest of the events since the last one now (the daemon does it every
    [audit] digest_every and when it stops)."""
    from driftwarden.api import Warden

    with Warden.open(app_state(ctx).config_path) as warden:
        digest = warden.sign_digest()
    if as_json:
        print_json(digest)
    elif digest is None:
        stdout.print("nothing to sign: no event since the last digest")
    else:
        stdout.print(
            f"digest {digest['number']} signed: events {digest['first_seq']}.."
            f"{digest['last_seq']}; head {digest['head']}"
        )


@audit_app.command("forward")
@handle_errors
def forward_command(
    ctx: typer.Context,
    timeout: Annotated[
        str, typer.Option("--timeout", help="Give up after this long (e.g. 30s, 5m).")
    ] = "60s",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Send every audit event not yet forwarded to each [[audit.forward]] destination,
    then exit (the daemon forwards as events happen); exit 1 if one is still behind."""
    from driftwarden.api import Warden

    try:
        seconds = parse_duration(timeout)
    except (ValueError, DurationRangeError) as exc:
        raise UsageError(f"--timeout: {exc}") from None
    with Warden.open(app_state(ctx).config_path) as warden:
        rows = warden.forward(timeout=seconds)
    if as_json:
        print_json({"destinations": rows})
    else:
        for row in rows:
            state = "up to date" if not row["behind"] else f"{row['behind']} events behind"
            error = f" ({escape(str(row['last_error']))})" if row["last_error"] else ""
            stdout.print(f"{row['name']}: {state}, through seq {row['seq']}{error}")
    if any(row["behind"] for row in rows):
        raise typer.Exit(1)


def _since(since: str | None) -> datetime | None:
    """`--since`: a date (2026-11-01, UTC unless it says otherwise) or an age (7d, 12h)."""
    if since is None:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(since))
    except DurationRangeError as exc:
        raise UsageError(f"--since: {exc}") from None
    except ValueError:
        pass
    try:
        cutoff = datetime.fromisoformat(since)
    except ValueError:
        raise UsageError(
            f"--since {since!r} is neither a date nor an age",
            hint="use e.g. 2026-11-01, 2026-11-01T08:00:00Z, 7d or 12h",
        ) from None
    return cutoff if cutoff.tzinfo is not None else cutoff.replace(tzinfo=UTC)


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
    from driftwarden.api import Warden

    with Warden.open_reader(app_state(ctx).config_path) as warden:
        if stack is not None:
            warden.config.stack(stack)  # an unknown name before a bad --since
        rows = warden.audit_log(stack=stack, since=_since(since), actor=actor, limit=limit,
                                page=page)  # fmt: skip
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
