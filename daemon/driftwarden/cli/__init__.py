"""The `driftwarden` command line (Typer). One module per command."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from driftwarden import __version__
from driftwarden.cli._context import AppState, closed_pipe, stderr
from driftwarden.cli.audit import audit_app
from driftwarden.cli.config_check import config_app
from driftwarden.cli.db import db_app
from driftwarden.cli.drift_show import drift_app
from driftwarden.cli.history import history_command
from driftwarden.cli.notify import notify_app
from driftwarden.cli.pulumi_env import pulumi_env_command
from driftwarden.cli.remediate import remediate_command
from driftwarden.cli.report import report_command
from driftwarden.cli.run import run_command
from driftwarden.cli.scan import scan_command
from driftwarden.cli.serve import serve_command
from driftwarden.cli.status import status_command
from driftwarden.cli.trigger import trigger_command
from driftwarden.cli.worker import worker_command

# Typer's click (its own copy since 0.22, click itself before): the exceptions it prints.
_ClickException: type[Exception] = next(
    base for base in typer.BadParameter.__mro__ if base.__name__ == "ClickException"
)


class _OneLineErrors(TyperGroup):
    """SPEC.md: an error is one line on stderr. Click prints a usage error in four (the
    usage, a `--help` hint, a blank line, the error): here it is the error and the hint."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            stderr.print("[bold red]error:[/] aborted")
            sys.exit(1)
        except _ClickException as exc:
            usage = getattr(exc, "ctx", None)
            hint = f" — see `{usage.command_path} --help`" if usage is not None else ""
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            message = " ".join(message.split())  # click lists choices on lines of their own
            stderr.print(f"[bold red]error:[/] {escape(message)}{escape(hint)}")
            sys.exit(getattr(exc, "exit_code", 2))
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    name="driftwarden",
    help="Keep a fleet of Pulumi stacks honest: detect drift, audit, notify, remediate.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"driftwarden {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Config file (default: $DRIFTWARDEN_CONFIG, ./driftwarden.toml, "
            "/etc/driftwarden/driftwarden.toml).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[  # noqa: ARG001 (handled eagerly by its callback)
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = AppState(config_path=config, debug=debug)


app.command("scan")(scan_command)
app.command("run")(run_command)
app.command("trigger")(trigger_command)
app.command("status")(status_command)
app.command("history")(history_command)
app.command("remediate")(remediate_command)
app.command("report")(report_command)
app.command("serve")(serve_command)
app.command("worker")(worker_command)
app.add_typer(drift_app, name="drift")
app.add_typer(audit_app, name="audit")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(notify_app, name="notify")
app.command("pulumi-env")(pulumi_env_command)


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # raised outside a command (help, --version)
        raise SystemExit(closed_pipe().exit_code) from None
