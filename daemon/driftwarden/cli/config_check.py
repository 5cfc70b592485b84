"""`driftwarden config check`: validate the config and show what it would do."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from driftwarden.cli._context import app_state, handle_errors, print_json, stdout
from driftwarden.config import Config
from driftwarden.engine.errors import redact_url
from driftwarden.schedule import format_duration
from driftwarden.service.runtime import store_url
from driftwarden.statedir import StateDir
from driftwarden.store.db import redact_db_url

config_app = typer.Typer(help="Validate and inspect the configuration.", no_args_is_help=True)


def describe(config: Config) -> dict[str, Any]:
    state = StateDir.for_config(config)
    return {
        "config": str(config.source),
        "sha256": config.digest,
        "state_dir": str(state.root),
        "backend_url": redact_url(state.backend_url),
        "database_url": redact_db_url(store_url(config, state)),
        "passphrase_file": str(state.passphrase_file),
        "passphrase": "generated once into the state directory"
        if state.passphrase_generated
        else "provided",
        "max_parallel": config.daemon.max_parallel,
        "stacks": [
            {
                "name": stack.name,
                "project_dir": str(stack.project_dir),
                "pulumi_stack": stack.stack,
                "checks": [check.value for check in stack.checks],
                "schedule": str(config.schedule_of(stack)),
                "timeout": format_duration(config.timeout_of(stack)),
                "sensitive_paths": list(stack.sensitive_paths),
                "env": sorted(stack.env),  # names only: values may be secrets
            }
            for stack in config.stacks
        ],
    }


@config_app.command("check")
@handle_errors
def check_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Validate the config and print what would be scanned, how and when."""
    plan = describe(app_state(ctx).load())
    if as_json:
        print_json(plan)
        return
    stdout.print(f"[green]ok[/] {escape(plan['config'])} (sha256 {plan['sha256'][:12]})")
    stdout.print(f"state directory: {escape(plan['state_dir'])}")
    stdout.print(f"backend: {escape(plan['backend_url'])}")
    stdout.print(f"audit store: {escape(plan['database_url'])}")
    stdout.print(f"passphrase: {escape(plan['passphrase_file'])} ({plan['passphrase']})")
    stdout.print(f"max parallel engine runs: {plan['max_parallel']}\n")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("stack", "project dir", "pulumi stack", "checks", "schedule", "timeout"):
        table.add_column(column, overflow="fold")
    for stack in plan["stacks"]:
        table.add_row(
            escape(stack["name"]),
            escape(stack["project_dir"]),
            escape(stack["pulumi_stack"]),
            ", ".join(stack["checks"]),
            stack["schedule"],
            stack["timeout"],
        )
    stdout.print(table if plan["stacks"] else "no stacks configured")
