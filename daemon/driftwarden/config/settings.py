"""The daemon's TOML configuration: pydantic models, loading, and precise errors.

Every error names the file and line (or the key) and says how to fix it, e.g.
`driftwarden.toml:14: stacks[1].schedule: invalid schedule 'weekly' — use …`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from driftwarden.domain.errors import ConfigError
from driftwarden.domain.model import Check, NotificationEvent, Severity
from driftwarden.domain.schedule import Schedule, format_duration, parse_duration
from driftwarden.drift.noise import Ignore, builtin_noise
from driftwarden.drift.rules import BUILTIN_RULES, Rule, at_least

ENV_CONFIG = "DRIFTWARDEN_CONFIG"
DEFAULT_LOCATIONS = (Path("driftwarden.toml"), Path("/etc/driftwarden/driftwarden.toml"))


def _schedule(value: Any) -> Any:
    return Schedule.parse(value) if isinstance(value, str) else value


def _duration(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


ScheduleField = Annotated[Schedule, BeforeValidator(_schedule), PlainSerializer(str)]
# A week: no engine run, timeout or jitter sensibly lasts longer, and an absurd value
# (999999999999d) would overflow the scheduler's clock arithmetic.
MAX_DURATION_SECONDS = 7 * 86400


def _bounded_duration(value: int) -> int:
    if value > MAX_DURATION_SECONDS:
        raise ValueError(f"{format_duration(value)} is longer than a week: use at most 7d")
    return value


DurationSeconds = Annotated[
    int,
    BeforeValidator(_duration),
    Field(gt=0),
    AfterValidator(_bounded_duration),
    PlainSerializer(format_duration),
]

# What the Pulumi CLI 3.259 accepts as a backend (pkg/backend/diy: go-cloud blob schemes
# and postgres; https/http: a Pulumi Cloud or self-hosted service).
BACKEND_SCHEMES = ("file", "s3", "gs", "azblob", "postgres", "https", "http")
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")
_URL_KINDS = {
    "backend_url": (BACKEND_SCHEMES, "a Pulumi backend"),
    "database_url": (DATABASE_SCHEMES, "an audit store"),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class DaemonSettings(_Model):
    """`[daemon]`: where state lives and how the engine is reached."""

    state_dir: Path | None = None
    backend_url: str | None = None
    database_url: str | None = None
    passphrase_file: Path | None = None
    pulumi_home: Path | None = None
    pulumi_bin: Path | None = None
    max_parallel: int = Field(default=2, ge=1, le=64)
    default_schedule: ScheduleField = Schedule(interval_seconds=3600)
    default_timeout: DurationSeconds = 1800
    # "single": `run` on one host, its own scheduler and queue (the default). "distributed":
    # `worker` on any number of hosts sharing a PostgreSQL store and its queue.
    mode: Literal["single", "distributed"] = "single"
    # Distributed: a worker silent (no heartbeat) this long is dead, and its checks run
    # again elsewhere.
    takeover_after: DurationSeconds = 30

    @field_validator("state_dir", "passphrase_file", "pulumi_home", "pulumi_bin")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve(value, info)

    @field_validator("state_dir")
    @classmethod
    def _state_dir_is_a_directory(cls, value: Path | None) -> Path | None:
        if value is not None and value.exists() and not value.is_dir():
            raise ValueError(f"{value} is a file, not a directory: use a directory path")
        return value

    @field_validator("backend_url", "database_url")
    @classmethod
    def _known_scheme(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            schemes, what = _URL_KINDS[info.field_name or ""]
            _require_scheme(value, schemes, what)
        return value

    @model_validator(mode="after")
    def _distributed_needs_postgresql(self) -> DaemonSettings:
        if self.mode == "distributed" and not is_postgresql_url(self.database_url):
            raise ValueError(
                'mode = "distributed" needs database_url = "postgresql://…": the workers '
                "share the store and its queue, which only PostgreSQL serves"
            )
        return self


def is_postgresql_url(url: str | None) -> bool:
    return url is not None and url.split("://", 1)[0].lower().startswith("postgres")


def _require_scheme(url: str, schemes: Sequence[str], what: str) -> None:
    """Only the scheme is named in the error: the rest of a URL may hold a password."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in schemes:
        shown = f"{scheme}://" if scheme else "no scheme"
        raise ValueError(
            f"{shown} is not {what} driftwarden can use: use one of "
            + ", ".join(f"{s}://" for s in schemes)
        )


DEFAULT_WEB_PORT = 8080
_LOOPBACK_NAMES = ("localhost",)


def split_listen(listen: str) -> tuple[str, int]:
    """`127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:9000` or `:8080` (loopback) → (host, port)."""
    host, sep, port = listen.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
        raise ValueError(f"{listen!r} is not HOST:PORT: use e.g. 127.0.0.1:8080")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


class WebSettings(_Model):
    """`[web]`: the read-only dashboard, `/metrics` and `/healthz`. `serve` listens on
    `listen` (default 127.0.0.1:8080); `run` starts the same server only when it is set.
    A non-loopback address needs a credential: a file (or systemd credential) holding a
    token, sent as `Authorization: Bearer TOKEN` or as the password of basic auth."""

    listen: str | None = None
    token_file: Path | None = None
    token_credential: str | None = None

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str | None) -> str | None:
        if value is not None:
            split_listen(value)
        return value

    @field_validator("token_file")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve(value, info)

    def address(self) -> tuple[str, int]:
        return split_listen(self.listen or f"127.0.0.1:{DEFAULT_WEB_PORT}")


# The events a target can choose (`events`); all of them by default.
NOTIFY_EVENTS: tuple[NotificationEvent, ...] = (
    NotificationEvent.DRIFT_NEW,
    NotificationEvent.DRIFT_CHANGED,
    NotificationEvent.DRIFT_RESOLVED,
    NotificationEvent.CHECK_FAILING,
    NotificationEvent.REMEDIATION_NEEDS_APPROVAL,
    NotificationEvent.REMEDIATION_SUCCEEDED,
    NotificationEvent.REMEDIATION_FAILED,
)


class NotificationSettings(_Model):
    """`[notifications]`: defaults for every target and stack."""

    default_targets: tuple[str, ...] = ()
    # check.failing fires after this many consecutive failed checks (and on recovery).
    check_failing_after: int = Field(default=2, ge=1, le=100)
    # Delivery attempts before a message is `failed` (exponential backoff in between).
    max_attempts: int = Field(default=8, ge=1, le=50)


class TargetConfig(_Model):
    """One `[[targets]]` entry: where messages go. Keep tokens out of the TOML: prefer
    `url_env`, `url_file` or `url_credential` (a systemd credential) over `urls`."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    urls: tuple[str, ...] = ()
    url_env: str | None = None
    url_file: Path | None = None
    url_credential: str | None = None
    config_file: Path | None = None  # an apprise config file (TEXT or YAML)
    events: tuple[str, ...] = NOTIFY_EVENTS
    # Only findings at or above this severity (none: every finding, rated or not).
    min_severity: SeverityName | None = None
    # A recap of everything still open on this target's stacks, e.g. "daily at 09:00"
    # (sent by the daemon; none when nothing is open). None: no digest.
    digest: ScheduleField | None = None

    def accepts(self, severity: str | None) -> bool:
        """Whether a finding of `severity` (None: unrated) passes `min_severity`."""
        return self.min_severity is None or at_least(severity, Severity(self.min_severity))

    @field_validator("url_file", "config_file")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve(value, info)

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [event for event in value if event not in NOTIFY_EVENTS]
        if unknown:
            raise ValueError(
                f"unknown event {unknown[0]!r}: use any of " + ", ".join(NOTIFY_EVENTS)
            )
        return value

    @model_validator(mode="after")
    def _has_a_source(self) -> TargetConfig:
        if not (self.urls or self.url_env or self.url_file or self.url_credential
                or self.config_file):  # fmt: skip
            raise ValueError(
                f"target {self.name!r} has no destination: "
                "use urls, url_env, url_file, url_credential or config_file"
            )
        return self


class RemediationPolicy(_Model):
    """`[remediation]` (defaults) and `[stacks.remediation]`: when and how drift is undone."""

    policy: Literal["none", "refresh", "up"] = "none"
    max_changes: int = Field(default=10, ge=1)  # refuse plans changing more resources
    allow_delete: bool = False  # refuse any plan that deletes…
    allow_replace: bool = False  # …or replaces a resource
    protect: tuple[str, ...] = ()  # URN globs never remediated automatically
    after_consecutive: int = Field(default=1, ge=1, le=1000)  # drift checks seeing drift first
    approval: Literal["auto", "manual"] = "auto"


# `Severity`'s values, as the config accepts them (a Literal keeps pydantic's message).
SeverityName = Literal["low", "medium", "high", "critical"]


class RuleConfig(_Model):
    """One `[[rules]]` entry (see driftwarden.drift.rules.Rule for the matching semantics)."""

    title: str = Field(min_length=1)
    severity: SeverityName
    type: str = "*"
    path: str = "*"
    change: str = "*"
    kind: str = "*"
    equals: Any = None
    contains: str | None = None
    matches: str | None = None
    changed_from: Any = None
    changed_to: Any = None
    empty: bool | None = None
    resource_contains: str | None = None

    @field_validator("matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    def rule(self) -> Rule:
        return Rule(**{**self.model_dump(), "severity": Severity(self.severity)})


class IgnoreConfig(_Model):
    """One `[[ignore]]` entry: differences that are not drift (see driftwarden.drift.noise)."""

    path: str = Field(min_length=1)  # a property path glob; also covers what lies below
    type: str = "*"  # a resource type glob
    reason: str = Field(min_length=1)  # why this is not drift: shown by `config check`

    def ignore(self) -> Ignore:
        return Ignore(path=self.path, type=self.type, reason=self.reason)


class PluginConfig(_Model):
    """One `[[plugins]]` entry: a provider plugin installed from a local file, never
    downloaded (air-gapped sites)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")
    version: str = Field(pattern=r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$")
    path: Path
    kind: Literal["resource", "converter", "analyzer", "language", "tool"] = "resource"

    @field_validator("path")
    @classmethod
    def _binary_exists(cls, value: Path, info: ValidationInfo) -> Path:
        path = _resolve(value, info)
        assert path is not None
        if not path.is_file():
            raise ValueError(
                f"plugin binary {str(value)!r} does not exist ({path}): use the path of the "
                "plugin's executable (e.g. the one scripts/ensure-kubernetes prints)"
            )
        if not os.access(path, os.X_OK):
            raise ValueError(f"plugin binary {path} is not executable: chmod +x it")
        return path

    @property
    def bare_version(self) -> str:
        return self.version.removeprefix("v")


class StackConfig(_Model):
    """One `[[stacks]]` entry: a Pulumi stack to keep honest."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    project_dir: Path
    stack: str = Field(min_length=1)
    checks: tuple[Check, ...] = (Check.DRIFT, Check.CODE)
    schedule: ScheduleField | None = None
    # Spread interval schedules by up to ± this much (runs land at random in the window).
    jitter: DurationSeconds | None = None
    timeout: DurationSeconds | None = None
    # Property paths (globs) whose values are always redacted, secret or not.
    sensitive_paths: tuple[str, ...] = ()
    # Extra environment for the engine (e.g. AWS_PROFILE); values are never logged.
    env: dict[str, str] = Field(default_factory=dict)
    # Notification targets (names of [[targets]]); default: [notifications] default_targets.
    notify: tuple[str, ...] | None = None
    # Overrides of [remediation] for this stack (only the keys given).
    remediation: dict[str, Any] = Field(default_factory=dict)

    @field_validator("remediation")
    @classmethod
    def _valid_remediation(cls, value: dict[str, Any]) -> dict[str, Any]:
        RemediationPolicy.model_validate(value)  # the same keys and checks as [remediation]
        return value

    @field_validator("project_dir")
    @classmethod
    def _project_exists(cls, value: Path, info: ValidationInfo) -> Path:
        path = _resolve(value, info)
        assert path is not None
        if not path.is_dir():
            raise ValueError(
                f"project directory {str(value)!r} does not exist ({path}): "
                "use the path of a Pulumi project, relative to this file or absolute"
            )
        if not (path / "Pulumi.yaml").is_file() and not (path / "Pulumi.yml").is_file():
            raise ValueError(
                f"project directory {str(value)!r} has no Pulumi.yaml ({path}): "
                "use the directory that holds the project's Pulumi.yaml"
            )
        return path

    @field_validator("checks")
    @classmethod
    def _checks_unique(cls, value: tuple[Check, ...]) -> tuple[Check, ...]:
        if not value:
            raise ValueError("checks is empty: list 'drift', 'code' or both")
        return tuple(dict.fromkeys(value))


class Config(_Model):
    daemon: DaemonSettings = DaemonSettings()
    notifications: NotificationSettings = NotificationSettings()
    web: WebSettings = WebSettings()
    remediation: RemediationPolicy = RemediationPolicy()
    targets: tuple[TargetConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    builtin_rules: bool = True  # the classic dangerous drifts (driftwarden.drift.rules)
    ignore: tuple[IgnoreConfig, ...] = ()
    plugins: tuple[PluginConfig, ...] = ()
    stacks: tuple[StackConfig, ...] = ()
    source: Path | None = Field(default=None, exclude=True)
    digest: str = Field(default="", exclude=True)  # SHA-256 of the file as loaded

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: dict[str, int] = {}
        for index, stack in enumerate(self.stacks):
            if stack.name in seen:
                raise _DuplicateNameError(index, stack.name, seen[stack.name])
            seen[stack.name] = index
        names = [target.name for target in self.targets]
        for index, target in enumerate(self.targets):
            if names.index(target.name) != index:
                raise _DuplicateNameError(index, target.name, names.index(target.name), "targets")
        for index, stack in enumerate(self.stacks):
            for name in stack.notify or ():
                if name not in names:
                    raise _UnknownTargetError(index, name, names)
        for name in self.notifications.default_targets:
            if name not in names:
                raise _UnknownTargetError(None, name, names)
        plugins = [(plugin.kind, plugin.name, plugin.bare_version) for plugin in self.plugins]
        for index, plugin in enumerate(plugins):
            if plugins.index(plugin) != index:
                raise _DuplicateNameError(index, plugin[1], plugins.index(plugin), "plugins")
        return self

    def stack(self, name: str) -> StackConfig:
        for stack in self.stacks:
            if stack.name == name:
                return stack
        known = ", ".join(s.name for s in self.stacks) or "none configured"
        raise ConfigError(
            str(self.source or "config"), f"no stack named {name!r}", hint=f"known stacks: {known}"
        )

    def require_stacks(self) -> None:
        """The daemon has nothing to do without stacks: say so instead of idling."""
        if not self.stacks:
            raise ConfigError(
                str(self.source or "config"), "no stacks configured",
                hint="add a [[stacks]] table (name, project_dir, stack)",
            )  # fmt: skip

    def schedule_of(self, stack: StackConfig) -> Schedule:
        return stack.schedule or self.daemon.default_schedule

    def timeout_of(self, stack: StackConfig) -> int:
        return stack.timeout or self.daemon.default_timeout

    def risk_rules(self) -> list[Rule]:
        own = [rule.rule() for rule in self.rules]
        return own + list(BUILTIN_RULES) if self.builtin_rules else own

    def noise_rules(self) -> list[Ignore]:
        """The built-in per-provider noise profiles, then the user's `[[ignore]]` rules."""
        return builtin_noise() + [entry.ignore() for entry in self.ignore]

    def remediation_of(self, stack: StackConfig) -> RemediationPolicy:
        return self.remediation.model_copy(update=RemediationPolicy.model_validate(
            stack.remediation).model_dump(include=set(stack.remediation)))  # fmt: skip

    def targets_of(self, stack: StackConfig) -> list[TargetConfig]:
        names = stack.notify if stack.notify is not None else self.notifications.default_targets
        return [target for target in self.targets if target.name in names]

    def target(self, name: str) -> TargetConfig | None:
        return next((target for target in self.targets if target.name == name), None)


class _DuplicateNameError(ValueError):
    def __init__(self, index: int, name: str, first: int, table: str = "stacks") -> None:
        kind = {"stacks": "stack", "targets": "target", "plugins": "plugin"}[table]
        super().__init__(
            f"duplicate {kind} name {name!r} (also {table}[{first}]): use a unique name"
        )
        self.index = index
        self.table = table


class _UnknownTargetError(ValueError):
    def __init__(self, index: int | None, name: str, known: list[str]) -> None:
        super().__init__(
            f"unknown notification target {name!r}: use one of "
            + (", ".join(known) or "(none: add a [[targets]] entry)")
        )
        self.index = index


def _resolve(value: Path | None, info: ValidationInfo) -> Path | None:
    if value is None:
        return None
    base = (info.context or {}).get("base_dir")
    path = value.expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path.resolve() if path.is_absolute() else path


def find_config(explicit: Path | None) -> Path:
    """--config, else $DRIFTWARDEN_CONFIG, else ./driftwarden.toml, else /etc/…."""
    if explicit is not None:
        return explicit
    if env := os.environ.get(ENV_CONFIG):
        return Path(env)
    for candidate in DEFAULT_LOCATIONS:
        if candidate.is_file():
            return candidate
    raise ConfigError(
        "driftwarden.toml",
        "no configuration file found",
        hint="pass --config PATH, set $DRIFTWARDEN_CONFIG, or create ./driftwarden.toml "
        "(see config/driftwarden.toml)",
    )


def load_config(path: Path) -> Config:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found", hint="check --config") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from None
    text = raw.decode("utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"{path}:{line.group(1)}" if line else str(path)
        reason = re.sub(r"\s*\(at .*\)$", "", str(exc))
        raise ConfigError(where, f"invalid TOML: {reason}", hint="fix the syntax") from None
    try:
        config = Config.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise _config_error(path, text, exc) from None
    return config.model_copy(
        update={"source": path.resolve(), "digest": hashlib.sha256(raw).hexdigest()}
    )


def _config_error(path: Path, text: str, exc: ValidationError) -> ConfigError:
    error = exc.errors()[0]
    loc: list[str | int] = list(error["loc"])
    ctx = error.get("ctx") or {}
    if isinstance(ctx.get("error"), _DuplicateNameError):
        loc = [ctx["error"].table, ctx["error"].index, "name"]
    if isinstance(ctx.get("error"), _UnknownTargetError):
        index = ctx["error"].index
        loc = (
            ["stacks", index, "notify"]
            if index is not None
            else ["notifications", "default_targets"]
        )
    where = _where(path, text, loc)
    key = _dotted(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = loc[:-1]
        tables: dict[str, type[BaseModel]] = {
            "stacks": StackConfig,
            "targets": TargetConfig,
            "notifications": NotificationSettings,
            "daemon": DaemonSettings,
            "remediation": RemediationPolicy,
            "rules": RuleConfig,
            "ignore": IgnoreConfig,
            "plugins": PluginConfig,
        }
        model = tables.get(str(parent[0]), Config) if parent else Config
        valid = ", ".join(name for name, f in model.model_fields.items() if not f.exclude)
        return ConfigError(where, f"unknown key {key!r}", hint=f"valid keys here: {valid}")
    if kind == "missing":
        return ConfigError(where, f"{key}: required key is missing", hint=f"add {loc[-1]} = …")
    message = str(error["msg"]).removeprefix("Value error, ")
    hint = None
    if " — " not in message and ": use " in message:
        message, hint = message.split(": use ", 1)
        hint = "use " + hint
    if kind == "enum":
        hint = "use one of: " + ", ".join(c.value for c in Check)
    return ConfigError(where, f"{key}: {message}", hint=hint)


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _where(path: Path, text: str, loc: Sequence[str | int]) -> str:
    line = _locate(text, loc)
    return f"{path}:{line}" if line else str(path)


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"]+)\s*\]\]?")


def _locate(text: str, loc: Sequence[str | int]) -> int | None:
    """The line of the key that `loc` names: the table header of `[[stacks]]` #i, then the key."""
    lines = text.splitlines()
    table: list[str | int] = []
    counts: dict[str, int] = {}
    best: int | None = None
    for number, line in enumerate(lines, start=1):
        header = _HEADER.match(line)
        if header:
            name = header.group(2).strip('"')
            parts: list[str | int] = list(name.split("."))
            if header.group(1) == "[[":
                counts[name] = counts.get(name, -1) + 1
                parts = [*parts, counts[name]]
            elif parts[0] in counts:  # a sub-table of the latest [[array]] entry
                parts = [parts[0], counts[parts[0]], *parts[1:]]
            table = parts
            if list(loc[: len(table)]) == table:
                best = number
            continue
        key = re.match(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]+\")\s*=", line)
        in_table = key is not None and list(loc[: len(table)]) == table and len(loc) > len(table)
        if in_table and key is not None and key.group(1).strip('"') == loc[len(table)]:
            return number
    return best
