"""Facts about local processes that both the engine and the store need."""

from __future__ import annotations

import os


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
