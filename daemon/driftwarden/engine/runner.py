"""Run driftwarden's checks on a stack with Pulumi's Automation API.

The only module that imports `pulumi.automation`. The drift check is
`Stack.preview_refresh` (`pulumi refresh --preview-only`: changes nothing); the code
check is `Stack.preview`. Events are collected by `on_event`, which runs on another
thread and must not raise (the Automation API would only warn), so it only appends.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pulumi.automation import (
    CommandError,
    EngineEvent,
    LocalWorkspace,
    Stack,
    StackNotFoundError,
)

from driftwarden.domain.model import ErrorKind, StackUpdate, urn_name
from driftwarden.domain.redact import redact_url
from driftwarden.drift import stack_was_deployed
from driftwarden.engine.api import (
    Action,
    CheckRun,
    EngineTarget,
    Progress,
    project_settings,
)
from driftwarden.engine.errors import EngineError, classify_failure
from driftwarden.engine.events import to_engine_json
from driftwarden.engine.locate import locate_engine

log = logging.getLogger(__name__)

# Variables that would silently change what the engine does; we set what we need.
_SCRUBBED_PREFIXES = ("PULUMI_OPTION_",)
_SCRUBBED = ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


def scrub_environment() -> None:
    """Remove what would change the engine's behaviour behind our back (the workspace
    passes the process environment to every command). Only in an engine worker: a
    process of its own, so the caller's environment is never touched."""
    for key in list(os.environ):
        if key in _SCRUBBED or key.startswith(_SCRUBBED_PREFIXES):
            del os.environ[key]


# What an update's environment says about who and where, without the noise.
_PROVENANCE = ("git.", "vcs.", "ci.", "exec.", "pulumi.version", "pulumi.user", "updatedBy")


def _trim_nanos(stamp: str) -> str:
    """Go prints nanoseconds; Python parses at most microseconds."""
    head, dot, rest = stamp.partition(".")
    if not dot:
        return stamp
    digits = "".join(ch for ch in rest if ch.isdigit())
    zone = rest[len(digits) :]
    return f"{head}.{digits[:6]}{zone}"


def _utc(when: datetime) -> datetime:
    """The CLI prints UTC; the Automation API parses it without a zone."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


class _Workspace(LocalWorkspace):
    """A local workspace that does not select stacks. The Automation API names the stack
    on every command (`--stack`), so `pulumi stack select` would only check that the
    stack exists, at the cost of one more engine start per stack (about 0.2 s of CPU),
    and the command itself reports a missing stack (StackNotFoundError)."""

    def select_stack(self, stack_name: str) -> None:
        pass


class Engine:
    """The real Pulumi CLI of the pinned version, shared by every check of a process."""

    def __init__(self, pulumi_bin: Path | None = None) -> None:
        # Building a PulumiCommand runs `pulumi version`: locate builds one; share it.
        self.bin_dir, self.command = locate_engine(pulumi_bin)
        self._stacks: dict[tuple[str, str, tuple[tuple[str, str], ...]], Stack] = {}
        self._stacks_lock = threading.Lock()
        self.version = str(self.command.version)

    def run(
        self,
        target: EngineTarget,
        action: Action,
        progress: Progress | None = None,
        *,
        plan_file: Path | None = None,
    ) -> CheckRun:
        """One engine run. With `plan_file`, PLAN_UP saves its update plan there
        (`preview --save-plan`) and UP applies exactly that plan (`up --plan`): the engine
        refuses a step the plan does not contain ("violates plan")."""
        if not target.passphrase_file.is_file():
            raise EngineError(
                ErrorKind.PASSPHRASE,
                f"passphrase file {target.passphrase_file} does not exist",
                hint="create it (mode 0600) with the stack's passphrase, or drop "
                "[daemon] passphrase_file to use the generated one",
            )
        events: list[dict[str, Any]] = []
        counter = _ProgressCounter(action, progress)

        def on_event(event: EngineEvent) -> None:
            # Never raises: the Automation API prints the whole event, property values
            # and all, as a warning when its callback fails.
            try:
                data = to_engine_json(event)
                events.append(data)
                counter.observe(data)
            except Exception as exc:
                counter.progress = None  # a broken reporter is not the engine's failure
                log.warning("engine event not handled: %s", type(exc).__name__)

        started = time.monotonic()
        try:
            stack = self._select(target)
            quiet: dict[str, Any] = {"on_event": on_event, "color": "never",
                                     "suppress_progress": True}  # fmt: skip
            if action in (Action.DRIFT, Action.PLAN_REFRESH):
                stack.preview_refresh(show_secrets=False, **quiet)
            elif action is Action.CODE:
                stack.preview(**quiet)
            elif action is Action.PLAN_UP:
                stack.preview(refresh=True, plan=_plan_path(plan_file), **quiet)
            elif action is Action.REFRESH:
                stack.refresh(show_secrets=False, **quiet)
            else:
                stack.up(refresh=True, show_secrets=False, plan=_plan_path(plan_file), **quiet)
        except StackNotFoundError:
            raise self._not_deployed(target) from None
        except CommandError as exc:
            output = f"{exc}"
            raise classify_failure(
                output, events, stack=target.stack, backend_url=target.backend_url
            ) from None
        if not stack_was_deployed(events):
            raise self._not_deployed(target)
        return CheckRun(action, events, time.monotonic() - started, self.version)

    def history(self, target: EngineTarget, *, page_size: int = 50) -> list[StackUpdate]:
        """The stack's latest updates (newest first), as its backend records them."""
        try:
            stack = self._select(target)
            summaries = stack.history(page_size=page_size, show_secrets=False)
        except StackNotFoundError:
            raise self._not_deployed(target) from None
        except CommandError as exc:
            raise classify_failure(
                str(exc), [], stack=target.stack, backend_url=target.backend_url
            ) from None
        return [
            StackUpdate(
                version=summary.version or 0,
                kind=summary.kind,
                result=summary.result,
                start_time=_utc(summary.start_time),
                end_time=_utc(summary.end_time) if summary.end_time else None,
                message=summary.message or "",
                resource_changes={
                    str(getattr(op, "value", op)): count
                    for op, count in (summary.resource_changes or {}).items()
                },
                environment={
                    key: value
                    for key, value in (summary.environment or {}).items()
                    if key.startswith(_PROVENANCE)
                },
            )
            for summary in summaries
        ]

    def export(self, target: EngineTarget) -> dict[str, Any]:
        """The stack's state as the backend has it (`pulumi stack export`): its deployment,
        secrets as ciphertext."""
        try:
            deployment = self._select(target).export_stack().deployment or {}
        except CommandError as exc:
            raise classify_failure(
                str(exc), [], stack=target.stack, backend_url=target.backend_url
            ) from None
        return dict(deployment)

    def modified_times(self, target: EngineTarget) -> dict[str, datetime]:
        """When each resource was last written by an update (the state's `modified`)."""
        deployment = self.export(target)
        times = {}
        for resource in deployment.get("resources") or []:
            stamp = resource.get("modified")
            if isinstance(stamp, str) and resource.get("urn"):
                times[str(resource["urn"])] = _utc(datetime.fromisoformat(_trim_nanos(stamp)))
        return times

    def _select(self, target: EngineTarget) -> Stack:
        """The target's stack in a local workspace with the engine's environment, made
        once per engine: a scan's history read and check, and a worker's later calls,
        share it."""
        env = self.environment(target)
        key = (str(target.project_dir), target.stack, tuple(sorted(env.items())))
        with self._stacks_lock:
            stack = self._stacks.get(key)
            if stack is None:
                workspace = _Workspace(
                    work_dir=str(target.project_dir), pulumi_command=self.command, env_vars=env
                )
                stack = self._stacks[key] = Stack.select(target.stack, workspace)
        return stack

    def environment(self, target: EngineTarget) -> dict[str, str]:
        """The variables the engine runs with for `target` (beside the inherited ones)."""
        env = {
            "PULUMI_BACKEND_URL": target.backend_url,
            "PULUMI_CONFIG_PASSPHRASE_FILE": str(target.passphrase_file),
            "PULUMI_HOME": str(target.pulumi_home),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # Offline machines: never try to download a plugin a package merely mentions.
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        }
        if python := _project_python(target.project_dir):
            # Older language hosts ignore runtime.options.virtualenv; this works for all.
            env["PULUMI_PYTHON_CMD"] = str(python)
        env.update(target.env)
        return env

    @staticmethod
    def _not_deployed(target: EngineTarget) -> EngineError:
        return EngineError(
            ErrorKind.NOT_DEPLOYED,
            f"Pulumi stack {target.stack!r} has not been deployed to "
            f"{redact_url(target.backend_url)}",
            hint=f"run `pulumi up --stack {target.stack}` in {target.project_dir} first, "
            "or fix `stack`/`backend_url`",
        )


def _plan_path(plan_file: Path | None) -> str | None:
    return None if plan_file is None else str(plan_file)


def _project_python(project_dir: Path) -> Path | None:
    """The interpreter of the project's `runtime.options.virtualenv`, if it has one."""
    runtime = project_settings(project_dir).get("runtime")
    options = runtime.get("options") if isinstance(runtime, dict) else None
    venv = options.get("virtualenv") if isinstance(options, dict) else None
    if isinstance(venv, str):
        python = (project_dir / venv / "bin" / "python").absolute()
        return python if python.exists() else None
    return None


class _ProgressCounter:
    """Turns engine events into short progress lines ("refreshing motd (3 resources)")."""

    def __init__(self, action: Action, progress: Progress | None) -> None:
        self.verb = {
            Action.DRIFT: "refreshing", Action.REFRESH: "refreshing", Action.UP: "updating",
        }.get(action, "previewing")  # fmt: skip
        self.progress = progress
        self.seen: set[str] = set()

    def observe(self, event: Mapping[str, Any]) -> None:
        if self.progress is None:
            return
        pre = event.get("resourcePreEvent")
        if isinstance(pre, Mapping):
            urn = str(pre.get("metadata", {}).get("urn", ""))
            self.seen.add(urn)
            name = urn_name(urn)
            self.progress(f"{self.verb} {name} ({len(self.seen)} resources)")
