"""`driftwarden run`: the long-running daemon (foreground; systemd Type=notify)."""

from __future__ import annotations

import typer

from driftwarden.cli._context import JsonLogs, app_state, handle_errors
from driftwarden.service import logs


@handle_errors
def run_command(
    ctx: typer.Context,
    json_logs: JsonLogs = None,
) -> None:
    """Scan every configured stack on its schedule until stopped (SIGTERM); SIGHUP reloads."""
    from driftwarden.config import find_config
    from driftwarden.hosts.single import Daemon

    logs.configure(json_logs)
    daemon = Daemon(find_config(app_state(ctx).config_path))
    server = None
    if daemon.config.web.listen is not None:  # the dashboard beside the loop, on its store
        from driftwarden.service.runtime import Runtime
        from driftwarden.web.server import WebServer

        # A store of its own, read-only: page requests never take the daemon's connections.
        server = WebServer(lambda: Runtime.open_reader(daemon.config), daemon.config.web,
                           running_config=lambda: daemon.config,
                           loop_heartbeat=daemon.heartbeat, watch=daemon.watch)  # fmt: skip
        server.start()
        logs.logger.info("web server started", extra={"url": server.url})
    try:
        code = daemon.run()
    finally:
        if server is not None:
            server.stop()
    raise typer.Exit(code)
