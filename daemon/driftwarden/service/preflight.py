"""What `config check` verifies beyond the file's syntax: that the config can work.

Offline checks are errors (the config cannot work as written): a target whose URLs are
not apprise URLs, an unset `url_env`, a missing `url_file`, no stacks at all. Checks that
need the network or another machine are warnings, tried with a short timeout: the
machine running `config check` may not be the one running the daemon.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from driftwarden.config import Config, TargetConfig, load_config
from driftwarden.domain.errors import ConfigError, DriftwardenError
from driftwarden.engine.api import file_backend_dir
from driftwarden.notify.deliver import unusable
from driftwarden.service.messages.notifications import target_urls
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
    location: str | None = None  # file:line in the config, where there is one

    def to_dict(self) -> dict[str, str | None]:
        return {"level": self.level, "subject": self.subject, "message": self.message,
                "hint": self.hint, "location": self.location}  # fmt: skip

    def line(self) -> str:
        """One line: where, what it is about, what is wrong (no hint)."""
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.subject}: {self.message}"


def preflight(config: Config) -> list[Problem]:
    """Every problem found, errors first."""
    problems = (_stacks(config) + _files(config) + _targets(config) + _sources(config)
                + _audit(config) + _connections(config))  # fmt: skip
    return sorted(problems, key=lambda p: p.level != "error")


def require_usable_targets(config: Config) -> None:
    """The rule `config check` applies, for every command that notifies (scan, run,
    worker, remediate): a target that cannot work wherever driftwarden runs — an invalid
    URL, a url_file or config_file that is missing or holds no valid URL — makes the config
    invalid (exit 2). What depends on the process's environment (url_env, url_credential)
    is left to delivery, which keeps the message queued until it can go."""
    for index, target in enumerate(config.targets):
        problem = _unusable(config, index, target, environment=False)
        if problem is not None:
            raise ConfigError(
                problem.location or str(config.source),
                f"{problem.subject}: {problem.message}",
                hint=problem.hint,
            )


def load_service_config(path: Path) -> Config:
    """The config a long-running process (run, worker) starts or reloads with: valid,
    with stacks, and with targets that can work."""
    config = load_config(path)
    config.require_stacks()
    require_usable_targets(config)
    return config


def _stacks(config: Config) -> list[Problem]:
    if config.stacks:
        return []
    return [Problem("error", "stacks", "no stacks configured: `run` would have nothing to do",
                    "add a [[stacks]] table (name, project_dir, stack)",
                    location=str(config.source))]  # fmt: skip


def _files(config: Config) -> list[Problem]:
    """Files that must exist where the daemon runs (their kind was checked on load)."""
    problems = []
    passphrase = config.daemon.passphrase_file
    if passphrase is not None and not passphrase.exists():
        problems.append(Problem(
            "error", "passphrase", f"passphrase file {passphrase} does not exist",
            "create it (mode 0600) with the stacks' passphrase, or drop passphrase_file to "
            "use the one driftwarden generates", config.locate(["daemon", "passphrase_file"]),
        ))  # fmt: skip
    if config.web.token_credential is None or credentials_directory() is not None:
        try:
            config.web.token()
        except DriftwardenError as exc:
            problems.append(Problem("error", "web", exc.message.removeprefix("[web] "),
                                    exc.hint, config.locate(["web", "token_file"])))  # fmt: skip
    return problems


def _audit(config: Config) -> list[Problem]:
    """The signing keys `[audit]` names must load; each forwarder's files must exist."""
    from driftwarden.system.signing import load_signing_key

    problems = []
    for key in ("signing_key_file", "previous_signing_key_file"):
        path = getattr(config.audit, key)
        if path is None:
            continue
        try:
            load_signing_key(path)
        except DriftwardenError as exc:
            where = config.locate(["audit", key])
            problems.append(Problem("error", "audit", exc.message, exc.hint, where))
    for index, target in enumerate(config.audit.forward):
        subject = f"audit forward {target.name!r}"
        if target.ca_file is not None and not target.ca_file.exists():
            where = config.locate(["audit", "forward", index, "ca_file"])
            message = f"ca_file {target.ca_file} does not exist"
            hint = "the CA that signed the receiver's certificate"
            problems.append(Problem("error", subject, message, hint, where))
        if target.token_credential is None or credentials_directory() is not None:
            try:
                target.token()
            except DriftwardenError as exc:
                where = config.locate(["audit", "forward", index, "token_file"])
                problems.append(Problem("error", subject, exc.message, exc.hint, where))
    return problems


def _sources(config: Config) -> list[Problem]:
    """What each audit source needs: a log it can read, a webhook token, a kubeconfig for
    the inventory; and whether the platform says it lost audit events."""
    from driftwarden.service.sources.platform import feed_errors, kubeconfig_of, stacks_of
    from driftwarden.sources.kubeapi import KubeApi

    problems = []
    for index, source in enumerate(config.audit_sources):
        subject = f"audit source {source.name!r}"

        def problem(
            level: Literal["error", "warning"],
            message: str,
            hint: str | None,
            key: str,
            subject: str = subject,
            index: int = index,
        ) -> None:
            problems.append(Problem(level, subject, message, hint,
                                    config.locate(["audit_sources", index, key])))  # fmt: skip

        if source.path is not None:
            if not source.path.exists():
                problem(
                    "warning",
                    f"the log {source.path} does not exist (yet)",
                    "the API server's --audit-log-path; it creates the file",
                    "path",
                )
            elif not os.access(source.path, os.R_OK):
                problem(
                    "error",
                    f"the log {source.path} is not readable by uid {os.getuid()}",
                    "give driftwarden's user read access (e.g. a group)",
                    "path",
                )
        try:
            source.webhook_token()
        except DriftwardenError as exc:
            problem("error", exc.message, exc.hint, "webhook_token_file")
        kubeconfig = kubeconfig_of(source, stacks_of(config, source))
        if kubeconfig is None:
            if source.inventory:
                problem(
                    "error",
                    "no kubeconfig to list the stacks' scope with",
                    "set kubeconfig, or KUBECONFIG in the stacks' env",
                    "name",
                )
            continue
        try:
            api = KubeApi.from_kubeconfig(kubeconfig, CONNECT_TIMEOUT_SECONDS)
            errors = feed_errors(source, api.audit_errors())
        except DriftwardenError as exc:
            problem(
                "warning",
                f"cannot ask the platform about its audit log: {exc.message}",
                "it needs `get` on the non-resource URL /metrics",
                "name",
            )
            continue
        lost = {plugin: count for plugin, count in errors.items() if count}
        if lost:
            said = ", ".join(f"{count} events ({plugin})" for plugin, count in lost.items())
            problem(
                "warning",
                f"the platform failed to write {said}: the record is incomplete",
                "see the API server's log: 'Error in audit plugin'",
                "name",
            )
    webhooks = [
        s
        for s in config.audit_sources
        if s.webhook_token_file is not None or s.webhook_token_credential is not None
    ]
    if webhooks and config.web.tls_cert_file is None:
        problems.append(Problem(
            "warning", "web", "the API server sends the audit webhook's token only over HTTPS",
            "set [web] tls_cert_file and tls_key_file", config.locate(["web"]),
        ))  # fmt: skip
    return problems


def _targets(config: Config) -> list[Problem]:
    problems = []
    in_service = credentials_directory() is not None
    for index, target in enumerate(config.targets):
        if target.url_credential and not in_service:
            problems.append(Problem(
                "warning", f"target {target.name!r}",
                f"credential {target.url_credential!r} is read from $CREDENTIALS_DIRECTORY, "
                "which only the service has: not checked here",
                "run `config check` under the unit (systemd-run -p LoadCredential=…)",
                config.locate(["targets", index, "url_credential"]),
            ))  # fmt: skip
        problem = _unusable(config, index, target, environment=True)
        if problem is not None:
            problems.append(problem)
    return problems


def _unusable(
    config: Config, index: int, target: TargetConfig, *, environment: bool
) -> Problem | None:
    """Why `target` cannot deliver (with `environment`: as this process sees url_env and
    the systemd credentials), or None."""
    subject = f"target {target.name!r}"
    in_service = credentials_directory() is not None
    try:
        urls = target_urls(target, credential=in_service, environment=environment)
    except DriftwardenError as exc:
        key = "url_env" if "environment variable" in exc.message else "url_file"
        return Problem("error", subject, exc.message.removeprefix(f"{subject}: "), exc.hint,
                       config.locate(["targets", index, key]))  # fmt: skip
    reason = unusable(urls, target.config_file)
    if reason is not None:
        key = "config_file" if reason.startswith("notification config") else "urls"
        return Problem("error", subject, reason, "see apprise's URL formats for the service",
                       config.locate(["targets", index, key]))  # fmt: skip
    if (
        not urls
        and target.config_file is None
        and not target.url_credential
        and (environment or not target.url_env)
    ):
        return Problem("error", subject, "no URLs: messages would go nowhere",
                       "set urls, url_env, url_file or url_credential",
                       config.locate(["targets", index]))  # fmt: skip
    return None


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
