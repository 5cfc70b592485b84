"""`driftwarden serve`: the read-only dashboard, `/metrics` and `/healthz`."""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from driftwarden.cli._context import app_state, handle_errors, stdout

if TYPE_CHECKING:
    from driftwarden.config import Config
    from driftwarden.service.sources.watch import AuditWatch


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
    watch = _webhook_watch(config)
    server = WebServer(lambda: Runtime.open_reader(config), config.web, listen=listen,
                       watch=watch)  # fmt: skip
    signals: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        signals.append(signum)  # no lock in a handler (see hosts/single/daemon.py)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        if watch is not None:
            watch.start()
        auth = "token required" if server.protected else "loopback only, no credential"
        stdout.print(f"serving {server.url} (read-only; {auth}); Ctrl-C stops", highlight=False)
        while not signals and server.alive:
            time.sleep(0.25)
    finally:
        server.stop()
        if watch is not None:
            watch.stopping.set()
            watch.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _webhook_watch(config: Config) -> AuditWatch | None:
    """With an audit source that takes the webhook, a writer of its own for the events
    (the pages stay read-only) and the watch that requests the checks they ask for."""
    import threading

    from driftwarden.service.runtime import Runtime
    from driftwarden.service.sources.watch import AuditWatch

    webhooks = [
        s
        for s in config.audit_sources
        if s.webhook_token_file is not None or s.webhook_token_credential is not None
    ]
    if not webhooks:
        return None
    return AuditWatch(Runtime.open(config), threading.Event(), tail_files=False)
