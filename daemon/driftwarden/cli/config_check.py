"""`driftwarden config check`: validate the config and show what it would do."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from driftwarden.cli._context import app_state, handle_errors, print_json, stderr, stdout
from driftwarden.domain.errors import ConfigError
from driftwarden.domain.redact import redact_url
from driftwarden.domain.schedule import format_duration

if TYPE_CHECKING:  # loaded by the command that runs, not by every command
    from driftwarden.config import Config, TargetConfig
    from driftwarden.drift.noise import Ignore
    from driftwarden.service.preflight import Problem


config_app = typer.Typer(help="Validate and inspect the configuration.", no_args_is_help=True)


def describe(config: Config) -> dict[str, Any]:
    from driftwarden.drift.noise import builtin_noise
    from driftwarden.service.runtime import store_url
    from driftwarden.service.statedir import StateDir
    from driftwarden.store.db import redact_db_url

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
        "mode": config.daemon.mode,
        "where": where_it_runs(config, state.backend_url),
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
                "notify": [target.name for target in config.targets_of(stack)],
            }
            for stack in config.stacks
        ],
        "plugins": [
            {
                "kind": plugin.kind,
                "name": plugin.name,
                "version": plugin.bare_version,
                "path": str(plugin.path),
            }
            for plugin in config.plugins
        ],
        "ignore": [_ignore(rule, builtin=True) for rule in builtin_noise()]
        + [_ignore(entry.ignore(), builtin=False) for entry in config.ignore],
        "targets": [
            {
                "name": target.name,
                "sources": _sources(target),
                "events": list(target.events),
                "min_severity": target.min_severity,
                "digest": str(target.digest) if target.digest else None,
            }
            for target in config.targets
        ],
    }


def where_it_runs(config: Config, backend_url: str) -> list[str]:
    """What runs where, in the words of the operations guide."""
    from driftwarden.config import is_postgresql_url

    daemon = config.daemon
    if daemon.mode == "single":
        locks = ("PostgreSQL advisory locks (shared with any other host on this store)"
                 if is_postgresql_url(daemon.database_url)
                 else "flocks in the state directory (this host only)")  # fmt: skip
        return [
            f"`driftwarden run` on this host schedules and runs every check, at most "
            f"{daemon.max_parallel} engine runs at once",
            f"stack locks: {locks}",
        ]
    lines = [
        f"`driftwarden worker` on each host runs checks from the shared queue (procrastinate, "
        f"in the audit store's database), at most {daemon.max_parallel} engine runs per worker",
        "one worker, elected through the database, queues the schedules, trigger requests "
        "and digests; if it stops, another takes over within a second",
        f"a worker silent for {format_duration(daemon.takeover_after)} is lost: its checks "
        "run again on another worker, its operations end `interrupted`",
        "stack locks: PostgreSQL advisory locks, across all hosts",
        "every host needs this config, the audit key (or credential `audit-key`), the "
        "passphrase and access to the backend",
    ]
    if backend_url.startswith("file:"):
        lines.append(
            "warning: the backend is a file:// directory: workers on other hosts see it "
            "only on a shared filesystem; use an object store or a service"
        )
    return lines


def _ignore(rule: Ignore, *, builtin: bool) -> dict[str, Any]:
    return {"type": rule.type, "path": rule.path, "reason": rule.reason, "builtin": builtin}


def _install_plugins(config: Config, plan: dict[str, Any]) -> None:
    """Install `[[plugins]]` into the engine's PULUMI_HOME, as `run` and `scan` would."""
    from driftwarden.service.runtime import install_plugins
    from driftwarden.service.statedir import StateDir

    if not config.plugins:
        return
    state = StateDir.for_config(config)
    state.ensure()
    installed = install_plugins(config, state)
    for entry, (_, now) in zip(plan["plugins"], installed, strict=True):
        entry["status"] = "installed now" if now else "installed"


def _sources(target: TargetConfig) -> list[str]:
    """Where the target's URLs come from, never the URLs: they carry tokens."""
    sources = [f"{len(target.urls)} url(s) in the config"] if target.urls else []
    sources += [f"env {target.url_env}"] if target.url_env else []
    sources += [f"file {target.url_file}"] if target.url_file else []
    sources += [f"credential {target.url_credential}"] if target.url_credential else []
    sources += [f"apprise config {target.config_file}"] if target.config_file else []
    return sources


@config_app.command("check")
@handle_errors
def check_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Validate the config and print what would be scanned, how and when."""
    from driftwarden.service.preflight import preflight

    config = app_state(ctx).load()
    plan = describe(config)
    _install_plugins(config, plan)
    problems = preflight(config)
    plan["problems"] = [problem.to_dict() for problem in problems]
    failed = any(problem.level == "error" for problem in problems)
    if as_json:
        print_json(plan)
        _exit_if_failed(problems)
        return
    for problem in problems:
        color = "bold red" if problem.level == "error" else "yellow"
        hint = f" — {escape(problem.hint)}" if problem.hint else ""
        stderr.print(f"[{color}]{problem.level}:[/] {escape(problem.line())}{hint}")
    verdict = "[bold red]invalid[/]" if failed else "[green]ok[/]"
    stdout.print(f"{verdict} {escape(plan['config'])} (sha256 {plan['sha256'][:12]})")
    _print_plan(plan)
    _exit_if_failed(problems)


def _print_plan(plan: dict[str, Any]) -> None:
    stdout.print(f"state directory: {escape(plan['state_dir'])}")
    stdout.print(f"backend: {escape(plan['backend_url'])}")
    stdout.print(f"audit store: {escape(plan['database_url'])}")
    stdout.print(f"passphrase: {escape(plan['passphrase_file'])} ({plan['passphrase']})")
    stdout.print(f"max parallel engine runs: {plan['max_parallel']}")
    stdout.print(f"mode: {plan['mode']}")
    for line in plan["where"]:
        stdout.print(f"  {escape(line)}")
    stdout.print()
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ("stack", "project dir", "pulumi stack", "checks", "schedule", "timeout", "notify")
    for column in columns:
        table.add_column(column, overflow="fold")
    for stack in plan["stacks"]:
        table.add_row(
            escape(stack["name"]),
            escape(stack["project_dir"]),
            escape(stack["pulumi_stack"]),
            ", ".join(stack["checks"]),
            stack["schedule"],
            stack["timeout"],
            escape(", ".join(stack["notify"])) or "-",
        )
    stdout.print(table if plan["stacks"] else "no stacks configured")
    if plan["plugins"]:
        plugins = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("plugin", "version", "from", "status"):
            plugins.add_column(column, overflow="fold")
        for plugin in plan["plugins"]:
            plugins.add_row(f"{plugin['kind']} {escape(plugin['name'])}", plugin["version"],
                            escape(plugin["path"]), plugin["status"])  # fmt: skip
        stdout.print()
        stdout.print(plugins)
    ignores = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("not drift: type", "path", "why"):
        ignores.add_column(column, overflow="fold")
    for rule in plan["ignore"]:
        where = "built in" if rule["builtin"] else "[[ignore]]"
        ignores.add_row(escape(rule["type"]), escape(rule["path"]),
                        escape(f"{rule['reason']} ({where})"))  # fmt: skip
    stdout.print()
    stdout.print(ignores)
    if not plan["targets"]:
        return
    targets = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("target", "urls from", "events", "min severity", "digest"):
        targets.add_column(column, overflow="fold")
    for target in plan["targets"]:
        targets.add_row(
            escape(target["name"]),
            escape("; ".join(target["sources"])),
            ", ".join(target["events"]),
            target["min_severity"] or "-",
            target["digest"] or "-",
        )
    stdout.print()
    stdout.print(targets)


def _exit_if_failed(problems: list[Problem]) -> None:
    if any(problem.level == "error" for problem in problems):
        raise typer.Exit(ConfigError.exit_code)
