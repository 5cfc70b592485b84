"""`driftwarden run`: scan every configured stack on its schedule, within limits.

The scheduler loop (main thread) only decides *when*: it never runs engine work. Scans
go to a pool of `max_parallel` workers; each check runs in its own process group
(timeouts, clean shutdown). A tick that finds its stack still scanning is skipped and
recorded. The loop also claims `driftwarden trigger` requests, retries failing stacks
with backoff, pings the systemd watchdog while it is alive, and handles signals:
SIGTERM/SIGINT stop (running checks are interrupted and recorded `cancelled`), SIGHUP
reloads the config (an invalid one keeps the old running).
"""

from driftwarden.hosts.single.daemon import Daemon

__all__ = ["Daemon"]
