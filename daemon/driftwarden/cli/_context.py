"""What every command shares: the global options, config loading, output and errors."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape

from driftwarden.domain.errors import DriftwardenError

if TYPE_CHECKING:  # loaded by the command that runs, not by every command
    from driftwarden.config import Config

# The long-running commands' (`run`, `worker`) choice of log format.
JsonLogs = Annotated[
    bool | None,
    typer.Option(
        "--json-logs/--text-logs",
        help="Log format (default: JSON lines unless stdout is a terminal).",
    ),
]

P = ParamSpec("P")
R = TypeVar("R")

# Piped output is read by people too (and by grep): give tables room instead of 80 columns.
_PIPE_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "200"))


class _Output(Console):
    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise closed_pipe()


stdout = _Output(highlight=False, soft_wrap=True, width=_PIPE_WIDTH)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class AppState:
    config_path: Path | None = None
    debug: bool = False

    def load(self) -> Config:
        from driftwarden.config import find_config, load_config

        return load_config(find_config(self.config_path))


def app_state(ctx: typer.Context) -> AppState:
    state = ctx.find_root().obj
    return state if isinstance(state, AppState) else AppState()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fail(message: str, code: int) -> typer.Exit:
    stderr.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


# What a shell reports for a writer ended by SIGPIPE (128 + 13), e.g. under `| head`.
CLOSED_PIPE_EXIT = 141


def closed_pipe() -> typer.Exit:
    """The reader went away (`driftwarden audit export | head`): stop quietly. Later
    writes, and the interpreter's last flush, go nowhere instead of raising again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return typer.Exit(CLOSED_PIPE_EXIT)


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """One clear line on stderr and SPEC.md's exit code; a traceback only with --debug.

    The command must take `ctx: typer.Context` (it carries --debug).
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = kwargs.get("ctx")
        # Typer ≥ 0.22 runs commands on its own copy of click, whose contexts are not
        # `typer.Context` instances: what matters is that it has a root.
        debug = app_state(cast(typer.Context, ctx)).debug if hasattr(ctx, "find_root") else False
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except DriftwardenError as exc:
            if debug:
                raise
            raise fail(escape(str(exc)), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except BrokenPipeError:
            raise closed_pipe() from None
        except Exception as exc:
            if debug:
                raise
            raise fail(
                escape(f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for details)"),
                1,
            ) from None

    return wrapper
