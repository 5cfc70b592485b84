"""Local processes: whether one lives (the engine's lock clean-up, the store's recovery)
and which carry a marker (stopping an engine tree)."""

from __future__ import annotations

import contextlib
import os
import signal


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (whoever owns it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def processes_marked(name: str, value: str) -> list[int]:
    """Pids of live processes whose environment holds `name=value`.

    An environment variable survives what a process group does not: pulumi starts each
    plugin (language host, providers) in a process group of its own, and a killed
    parent leaves them to init. Zombies have no environment and are not listed.
    """
    needle = f"{name}={value}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as environ:
                variables = environ.read().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        if needle in variables:
            found.append(int(entry.name))
    return found


def kill_marked(name: str, value: str) -> list[int]:
    """SIGKILL every live process marked `name=value` except the caller; their pids."""
    marked = [pid for pid in processes_marked(name, value) if pid != os.getpid()]
    for pid in marked:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return marked
