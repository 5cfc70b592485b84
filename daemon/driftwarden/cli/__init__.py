"""The `driftwarden` command line (Typer). One module per command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftwarden import __version__
from driftwarden.cli._context import AppState, closed_pipe
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

app = typer.Typer(
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
