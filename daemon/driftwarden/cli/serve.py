"""`driftwarden serve`: the read-only dashboard, `/metrics` and `/healthz`."""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Annotated

import typer

from driftwarden.cli._context import app_state, handle_errors, stdout


@handle_errors
def serve_command(
    ctx: typer.Context,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Address (default: [web] listen, else 127.0.0.1:8080). Any address other "
            "than loopback needs [web] token_file or token_credential.",
        ),
    ] = None,
) -> None:
    """Serve the fleet dashboard (read-only) until SIGTERM or Ctrl-C."""
    from driftwarden.config import split_listen
    from driftwarden.domain.errors import UsageError
    from driftwarden.service.runtime import Runtime
    from driftwarden.web.server import WebServer

    if listen is not None:
        try:
            split_listen(listen)
        except ValueError as exc:
            raise UsageError(f"--listen: {exc}") from None
    config = app_state(ctx).load()
    server = WebServer(lambda: Runtime.open_reader(config), config.web, listen=listen)
    signals: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        signals.append(signum)  # no lock in a handler (see service/daemon/loop.py)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        auth = "token required" if server.protected else "loopback only, no credential"
        stdout.print(f"serving {server.url} (read-only; {auth}); Ctrl-C stops", highlight=False)
        while not signals and server.alive:
            time.sleep(0.25)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
