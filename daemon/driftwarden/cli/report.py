"""`driftwarden report`: the fleet's drift as one standalone HTML, Markdown or JSON file."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Literal

import typer

from driftwarden.cli._complete import stack_names
from driftwarden.cli._context import app_state, handle_errors, stdout
from driftwarden.domain.errors import DriftwardenError, UsageError

FORMATS: dict[str, Literal["html", "md", "json"]] = {"html": "html", "md": "md", "json": "json"}


@handle_errors
def report_command(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Stacks to report on (default: all).", autocompletion=stack_names),
    ] = None,
    form: Annotated[
        str, typer.Option("--format", help="html (one file, inline CSS), md or json.")
    ] = "html",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
) -> None:
    """Summary, every open finding with its diff, severity and attribution, and the
    audit chain's verified head: for a change review or an audit."""
    from driftwarden.api import Warden

    if form not in FORMATS:
        raise UsageError(
            f"--format {form!r} is not one of html, md, json",
            hint="`--format md` pastes into a pull request or ticket",
        )
    with Warden.open_reader(app_state(ctx).config_path) as warden:
        text = warden.report(names, format=FORMATS[form])
    if output is None:
        sys.stdout.write(text)
        return
    output = output.expanduser()
    write_file(output, text)
    stdout.print(f"wrote {output} ({form}, {len(text.encode()):,} bytes)")


def write_file(output: Path, text: str) -> None:
    """Write `text` to `output`. A regular file (or a new one) is written whole or not at
    all: to a temporary file beside it, then renamed over it (a report half written over
    an older one misleads). Anything else — /dev/stdout, /dev/null, a FIFO — is written
    in place: renaming over it would replace the device node with a regular file."""
    target = output.resolve()  # a symlink's target is written, the link kept
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise DriftwardenError(f"cannot write {output}: {exc.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"--output {output} is a directory", hint="name a file")
    try:
        if mode is not None and not stat.S_ISREG(mode):
            with target.open("w", encoding="utf-8") as special:
                special.write(text)
            return
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
        ) as partial:
            partial.write(text)
        os.replace(partial.name, target)
    except OSError as exc:
        if "partial" in locals():
            Path(partial.name).unlink(missing_ok=True)
        raise DriftwardenError(f"cannot write {output}: {exc.strerror}") from None
