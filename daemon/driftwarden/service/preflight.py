"""What `config check` verifies beyond the file's syntax: that the config can work.

Offline checks are errors (the config cannot work as written): a target whose URLs are
not apprise URLs, an unset `url_env`, a missing `url_file`, no stacks at all. Checks that
need the network or another machine are warnings, tried with a short timeout: the
machine running `config check` may not be the one running the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from driftwarden.config import Config
from driftwarden.domain.errors import DriftwardenError
from driftwarden.engine.api import file_backend_dir
from driftwarden.notify.deliver import unusable
from driftwarden.service.notifications import target_urls
from driftwarden.service.runtime import store_url
from driftwarden.service.statedir import StateDir
from driftwarden.store.db import probe_store
from driftwarden.system.credentials import credentials_directory

CONNECT_TIMEOUT_SECONDS = 3


@dataclass(frozen=True)
class Problem:
    level: Literal["error", "warning"]
    subject: str  # what it is about: "stacks", "target 'ops'", "audit store"
    message: str
    hint: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"level": self.level, "subject": self.subject, "message": self.message,
                "hint": self.hint}  # fmt: skip


def preflight(config: Config) -> list[Problem]:
    """Every problem found, errors first."""
    problems = _stacks(config) + _targets(config) + _connections(config)
    return sorted(problems, key=lambda p: p.level != "error")


def _stacks(config: Config) -> list[Problem]:
    if config.stacks:
        return []
    return [Problem("error", "stacks", "no stacks configured: `run` would have nothing to do",
                    "add a [[stacks]] table (name, project_dir, stack)")]  # fmt: skip


def _targets(config: Config) -> list[Problem]:
    problems = []
    for target in config.targets:
        subject = f"target {target.name!r}"
        in_service = credentials_directory() is not None
        if target.url_credential and not in_service:
            problems.append(Problem(
                "warning", subject,
                f"credential {target.url_credential!r} is read from $CREDENTIALS_DIRECTORY, "
                "which only the service has: not checked here",
                "run `config check` under the unit (systemd-run -p LoadCredential=…)",
            ))  # fmt: skip
        try:
            urls = target_urls(target, credential=in_service)
        except DriftwardenError as exc:
            problems.append(Problem("error", subject, str(exc).removeprefix(f"{subject}: "),
                                    exc.hint))  # fmt: skip
            continue
        reason = unusable(urls, target.config_file)
        if reason is not None:
            problems.append(Problem("error", subject, reason,
                                    "see apprise's URL formats for the service"))  # fmt: skip
        elif not urls and target.config_file is None and not target.url_credential:
            problems.append(Problem("error", subject, "no URLs: messages would go nowhere",
                                    "set urls, url_env, url_file or url_credential"))  # fmt: skip
    return problems


def _connections(config: Config) -> list[Problem]:
    problems = []
    state = StateDir.for_config(config)
    reason = probe_store(store_url(config, state), timeout=CONNECT_TIMEOUT_SECONDS)
    if reason is not None:
        hint = "check [daemon] database_url and that the server runs"
        problems.append(Problem("warning", "audit store", reason, hint))
    path = file_backend_dir(state.backend_url)
    if path is not None and not state.uses_default_backend and not path.is_dir():
        problems.append(Problem("warning", "backend", f"{path} is not a directory",
                                "create it, or fix [daemon] backend_url"))  # fmt: skip
    return problems
