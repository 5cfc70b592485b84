"""The daemon's TOML configuration: pydantic models, loading, and precise errors.

Every error names the file and line (or the key) and says how to fix it, e.g.
`driftwarden.toml:14: stacks[1].schedule: invalid schedule 'weekly' — use …`.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import os
import re
import tomllib
import typing
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from driftwarden.domain.errors import ConfigError, UsageError
from driftwarden.domain.model import Check, DiffKind, NotificationEvent, Severity
from driftwarden.domain.schedule import (
    DURATION_HELP,
    SCHEDULE_HELP,
    DurationRangeError,
    Schedule,
    format_duration,
    parse_duration,
)
from driftwarden.drift.noise import Ignore, builtin_noise
from driftwarden.drift.propertypath import glob
from driftwarden.drift.rules import BUILTIN_RULES, Rule, at_least
from driftwarden.system.credentials import credential
from driftwarden.system.files import (
    TEXT_FILE_LIMIT,
    UnusableFileError,
    path_problem,
    read_capped,
    read_text_capped,
)

ENV_CONFIG = "DRIFTWARDEN_CONFIG"
DEFAULT_LOCATIONS = (Path("driftwarden.toml"), Path("/etc/driftwarden/driftwarden.toml"))


def _schedule(value: Any) -> Any:
    if isinstance(value, Schedule):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_toml_value(value)}: {SCHEDULE_HELP}")
    return Schedule.parse(value)


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except DurationRangeError as exc:
            if exc.seconds > MAX_DURATION_SECONDS:  # said by the field's own bound
                return exc.seconds
            raise
    if isinstance(value, bool) or not isinstance(value, int):  # an int: seconds
        raise ValueError(f"expected a duration, got {_toml_value(value)}: {DURATION_HELP}")
    return value


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

# Names as Pulumi's CLI 3.259 accepts them (sdk/go/common/tokens): a project name, and a
# stack reference `stack`, `org/stack` or `org/project/stack`, each part of these.
_PULUMI_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_NAME_RULE = "letters, digits, '_', '.' and '-' (at most 100)"


def _pulumi_stack(value: str) -> str:
    parts = value.split("/")
    if len(parts) > 3 or not all(_PULUMI_NAME.fullmatch(part) for part in parts):
        raise ValueError(
            f"{value!r} is not a Pulumi stack name: use {_NAME_RULE}, "
            "optionally as org/stack or org/project/stack"
        )
    return value


def _our_name(value: str) -> str:
    """A name of ours (stack, target): it appears in URLs, file names and metrics labels."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", value):
        raise ValueError(
            f"{value!r} is not a valid name: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit (at most 100)"
        )
    return value


Name = Annotated[str, AfterValidator(_our_name)]


def _kind_if_present(value: Path | None, want: Literal["file", "directory"], what: str) -> None:
    """A path that may not exist yet (it is created, or read on another host) must at
    least not be of the wrong kind when it does."""
    if value is None:
        return
    problem = path_problem(value, want)
    if problem is not None and not problem.startswith("does not exist"):
        raise ValueError(f"{what} {value} {problem}")


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
    max_parallel: StrictInt = Field(default=2, ge=1, le=64)
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

    @field_validator("state_dir", "pulumi_home")
    @classmethod
    def _a_directory(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        _kind_if_present(value, "directory", str(info.field_name))
        return value

    @field_validator("passphrase_file")
    @classmethod
    def _a_file(cls, value: Path | None) -> Path | None:
        _kind_if_present(value, "file", "passphrase file")
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
MIN_TOKEN_LENGTH = 16
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
    # HTTPS: the audit webhook needs it (the API server sends its token only over TLS).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str | None) -> str | None:
        if value is not None:
            split_listen(value)
        return value

    @field_validator("token_file", "tls_cert_file", "tls_key_file")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        path = _resolve(value, info)
        _kind_if_present(path, "file", str(info.field_name).replace("_", " "))
        return path

    @model_validator(mode="after")
    def _both_tls_files(self) -> WebSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both, or neither")
        return self

    def address(self) -> tuple[str, int]:
        return split_listen(self.listen or f"127.0.0.1:{DEFAULT_WEB_PORT}")

    def token(self) -> str | None:
        """The configured token (stripped), read now; None when none is configured."""
        return _read_token(self.token_file, self.token_credential, "[web]")


def _read_token(path: Path | None, credential_name: str | None, table: str) -> str | None:
    """A bearer token from its file or systemd credential (stripped, at least
    MIN_TOKEN_LENGTH characters); None when neither is configured."""
    if credential_name is not None:
        path = credential(credential_name)
        if path is None:
            raise UsageError(
                f"{table} credential {credential_name!r}: no such systemd credential",
                hint="add LoadCredential=NAME:PATH to the unit, or use a token file",
            )
    if path is None:
        return None
    try:
        token = read_text_capped(path).strip()
    except UnusableFileError as exc:
        raise UsageError(f"{table} token file {path} {exc}", hint="create it (mode 0600)") from None
    if len(token) < MIN_TOKEN_LENGTH:
        raise UsageError(
            f"{table} token file {path}: the token is shorter than {MIN_TOKEN_LENGTH} characters",
            hint="e.g. `openssl rand -hex 32 > FILE`",
        )
    return token


# The events a target can choose (`events`); all of them by default.
NOTIFY_EVENTS: tuple[NotificationEvent, ...] = (
    NotificationEvent.DRIFT_NEW,
    NotificationEvent.DRIFT_CHANGED,
    NotificationEvent.DRIFT_RESOLVED,
    NotificationEvent.DRIFT_ACCEPTED,
    NotificationEvent.CHECK_FAILING,
    NotificationEvent.REMEDIATION_NEEDS_APPROVAL,
    NotificationEvent.REMEDIATION_SUCCEEDED,
    NotificationEvent.REMEDIATION_FAILED,
)


class NotificationSettings(_Model):
    """`[notifications]`: defaults for every target and stack."""

    default_targets: tuple[str, ...] = ()
    # check.failing fires after this many consecutive failed checks (and on recovery).
    check_failing_after: StrictInt = Field(default=2, ge=1, le=100)
    # Delivery attempts before a message is `failed` (exponential backoff in between).
    max_attempts: StrictInt = Field(default=8, ge=1, le=50)


class TargetConfig(_Model):
    """One `[[targets]]` entry: where messages go. Keep tokens out of the TOML: prefer
    `url_env`, `url_file` or `url_credential` (a systemd credential) over `urls`."""

    name: Name
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

    def wants(self, event: str) -> bool:
        """Whether messages of `event` go to this target: those `events` lists; a digest
        always (whoever queues one chose the target: by its `digest` schedule or by name)."""
        return event == NotificationEvent.DRIFT_DIGEST or event in self.events

    @field_validator("url_file", "config_file")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        path = _resolve(value, info)
        _kind_if_present(path, "file", str(info.field_name))
        return path

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
    max_changes: StrictInt = Field(default=10, ge=1)  # refuse plans changing more resources
    allow_delete: StrictBool = False  # refuse any plan that deletes…
    allow_replace: StrictBool = False  # …or replaces a resource
    protect: tuple[str, ...] = ()  # URN globs never remediated automatically
    # Drift checks that must see drift first.
    after_consecutive: StrictInt = Field(default=1, ge=1, le=1000)
    approval: Literal["auto", "manual"] = "auto"


# `Severity`'s values, as the config accepts them (a Literal keeps pydantic's message).
SeverityName = Literal["low", "medium", "high", "critical"]


class RuleConfig(_Model):
    """One `[[rules]]` entry (see driftwarden.drift.rules.Rule for the matching semantics)."""

    title: str = Field(min_length=1)
    severity: SeverityName
    type: str = "*"
    path: str = "*"
    change: Literal["*", "update", "delete", "create", "replace"] = "*"
    kind: str = "*"  # a glob over DiffKind's values
    equals: Any = None
    contains: str | None = None
    matches: str | None = None
    changed_from: Any = None
    changed_to: Any = None
    empty: StrictBool | None = None
    resource_contains: str | None = None

    @field_validator("kind")
    @classmethod
    def _some_kind(cls, value: str) -> str:
        pattern = glob(value)
        if not any(pattern.match(kind.value) for kind in DiffKind):
            raise ValueError(
                f"{value!r} matches no property diff kind: use one of "
                + ", ".join(kind.value for kind in DiffKind)
                + " (or a glob such as 'add*')"
            )
        return value

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
        problem = path_problem(path, "file")
        if problem is not None:
            resolved = f" ({path})" if str(path) != str(value) else ""
            raise ValueError(
                f"plugin binary {str(value)!r} {problem}{resolved}: use the path of the "
                "plugin's executable (e.g. the one scripts/ensure-kubernetes prints)"
            )
        if not os.access(path, os.X_OK):
            raise ValueError(f"plugin binary {path} is not executable: chmod +x it")
        return path

    @property
    def bare_version(self) -> str:
        return self.version.removeprefix("v")


# Cluster-scoped kinds whose new objects matter for security: in every Kubernetes stack's
# scope unless an audit source names others (`cluster_kinds`), as GROUP/KIND.
DEFAULT_CLUSTER_KINDS = (
    "rbac.authorization.k8s.io/ClusterRole",
    "rbac.authorization.k8s.io/ClusterRoleBinding",
    "admissionregistration.k8s.io/ValidatingWebhookConfiguration",
    "admissionregistration.k8s.io/MutatingWebhookConfiguration",
    "apiextensions.k8s.io/CustomResourceDefinition",
)
# Kinds listed in a stack's namespaces by the inventory (GROUP/KIND, "" group: core).
DEFAULT_NAMESPACED_KINDS = (
    "rbac.authorization.k8s.io/Role",
    "rbac.authorization.k8s.io/RoleBinding",
    "/ServiceAccount",
    "/ConfigMap",
    "/Secret",
    "/Service",
    "/Pod",
    "apps/Deployment",
    "apps/DaemonSet",
    "apps/StatefulSet",
    "batch/Job",
    "batch/CronJob",
    "networking.k8s.io/NetworkPolicy",
    "networking.k8s.io/Ingress",
)


def _group_kind(value: str) -> str:
    _, sep, kind = value.rpartition("/")
    if not sep or not kind or not kind[0].isupper():
        raise ValueError(
            f"{value!r} is not GROUP/KIND: use e.g. 'rbac.authorization.k8s.io/ClusterRole' "
            "or '/ConfigMap' (the core group)"
        )
    return value


GroupKind = Annotated[str, AfterValidator(_group_kind)]


class AuditSourceConfig(_Model):
    """One `[[audit_sources]]` entry: where the platform's own record of changes comes
    from (a Kubernetes API server's audit log file, or its audit webhook), and which
    stacks' objects live there."""

    name: Name
    kind: Literal["kubernetes"] = "kubernetes"
    # The API server's JSON-lines audit log (--audit-log-path), tailed.
    path: Path | None = None
    # The webhook: the API server posts to /ingest/audit/NAME with this bearer token.
    webhook_token_file: Path | None = None
    webhook_token_credential: str | None = None
    # The stacks whose objects live on this platform (default: every stack).
    stacks: tuple[str, ...] | None = None
    # Discovery and the inventory use this kubeconfig (default: each stack's KUBECONFIG).
    kubeconfig: Path | None = None
    cluster_kinds: tuple[GroupKind, ...] = DEFAULT_CLUSTER_KINDS
    namespaced_kinds: tuple[GroupKind, ...] = DEFAULT_NAMESPACED_KINDS
    # An out-of-band write requests a drift check of its stack after this quiet time…
    debounce: DurationSeconds = 2
    # …and at most once per this per stack (a busy controller cannot starve the fleet).
    min_interval: DurationSeconds = 30
    # List the scope's objects at each drift check (finds what predates the source).
    inventory: StrictBool = True

    @field_validator("path", "webhook_token_file", "kubeconfig")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        path = _resolve(value, info)
        _kind_if_present(path, "file", str(info.field_name))
        return path

    @model_validator(mode="after")
    def _has_a_feed(self) -> AuditSourceConfig:
        if (
            self.path is None
            and self.webhook_token_file is None
            and (self.webhook_token_credential is None)
        ):
            raise ValueError(
                f"audit source {self.name!r} has no events: set path (the API server's "
                "--audit-log-path) or webhook_token_file (for its audit webhook)"
            )
        return self

    def webhook_token(self) -> str | None:
        """The webhook's bearer token, read now; None without a webhook."""
        return _read_token(self.webhook_token_file, self.webhook_token_credential,
                           f"[[audit_sources]] {self.name!r}")  # fmt: skip


FORWARD_SCHEMES = ("syslog+tcp", "syslog+tls", "http", "https")


class ForwardConfig(_Model):
    """One `[[audit.forward]]` entry: a log system that receives every audit event as it
    is appended, in order, at least once — a syslog server (RFC 5424 over TCP, octet
    counting; `syslog+tls://` with `ca_file`) or an HTTP endpoint taking NDJSON."""

    name: Name
    url: str
    format: Literal["ocsf", "native"] = "ocsf"
    ca_file: Path | None = None  # TLS: the CA that signed the receiver's certificate
    token_file: Path | None = None  # HTTP: sent as `Authorization: Bearer TOKEN`
    token_credential: str | None = None
    # RFC 5424 HOSTNAME and APP-NAME (default: this host, "driftwarden").
    hostname: str | None = None
    app_name: str = Field(default="driftwarden", pattern=r"^[!-~]{1,48}$")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        _require_scheme(value, FORWARD_SCHEMES, "an audit forwarding destination")
        return value

    @field_validator("ca_file", "token_file")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        path = _resolve(value, info)
        _kind_if_present(path, "file", str(info.field_name).replace("_", " "))
        return path

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower()

    def token(self) -> str | None:
        return _read_token(self.token_file, self.token_credential,
                           f"[[audit.forward]] {self.name!r}")  # fmt: skip


class AuditSettings(_Model):
    """`[audit]`: the signed digests (an Ed25519 key: `driftwarden audit keygen`) and
    where audit events are forwarded."""

    # Default: the systemd credential `audit-signing-key`, else `audit-signing-key` in
    # the state directory when it exists (no key: no digests).
    signing_key_file: Path | None = None
    # During a rotation: the old key, which cross-signs the first digest of the new one.
    previous_signing_key_file: Path | None = None
    digest_every: DurationSeconds = 3600
    forward: tuple[ForwardConfig, ...] = ()
    # A destination that fails is retried after 1 s, 2 s, 4 s, … at most this long.
    forward_retry_max: DurationSeconds = 60

    @field_validator("signing_key_file", "previous_signing_key_file")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        path = _resolve(value, info)
        _kind_if_present(path, "file", str(info.field_name).replace("_", " "))
        return path


class StackConfig(_Model):
    """One `[[stacks]]` entry: a Pulumi stack to keep honest."""

    name: Name
    project_dir: Path
    stack: Annotated[str, AfterValidator(_pulumi_stack)]
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
    # Overrides of [remediation] for this stack: only the keys given (`model_fields_set`).
    remediation: RemediationPolicy = RemediationPolicy()

    @field_validator("project_dir")
    @classmethod
    def _project_exists(cls, value: Path, info: ValidationInfo) -> Path:
        path = _resolve(value, info)
        assert path is not None
        problem = path_problem(path, "directory")
        if problem is not None:
            resolved = f" ({path})" if str(path) != str(value) else ""
            raise ValueError(
                f"project directory {str(value)!r} {problem}{resolved}: "
                "use the path of a Pulumi project, relative to this file or absolute"
            )
        project_file = next(
            (path / name for name in ("Pulumi.yaml", "Pulumi.yml") if (path / name).is_file()),
            None,
        )
        if project_file is None:
            raise ValueError(
                f"project directory {str(value)!r} has no Pulumi.yaml ({path}): "
                "use the directory that holds the project's Pulumi.yaml"
            )
        _valid_project_file(project_file)
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
    builtin_rules: StrictBool = True  # the classic dangerous drifts (driftwarden.drift.rules)
    ignore: tuple[IgnoreConfig, ...] = ()
    plugins: tuple[PluginConfig, ...] = ()
    audit_sources: tuple[AuditSourceConfig, ...] = ()
    audit: AuditSettings = AuditSettings()
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
        stacks = [stack.name for stack in self.stacks]
        for index, source in enumerate(self.audit_sources):
            for name in source.stacks or ():
                if name not in stacks:
                    raise _LocatedError(
                        ["audit_sources", index, "stacks"],
                        f"unknown stack {name!r}: use one of " + (", ".join(stacks) or "none"),
                    )
        sources = [source.name for source in self.audit_sources]
        for index, name in enumerate(sources):
            if sources.index(name) != index:
                raise _DuplicateNameError(index, name, sources.index(name), "audit_sources")
        forwards = [target.name for target in self.audit.forward]
        for index, name in enumerate(forwards):
            if forwards.index(name) != index:
                raise _LocatedError(
                    ["audit", "forward", index, "name"],
                    f"duplicate audit forward name {name!r} (also audit.forward"
                    f"[{forwards.index(name)}]): use a unique name",
                )
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
        """The user's `[[rules]]`, then the built-in ones: compiled once per config."""
        return list(self.compiled_risk_rules)

    def noise_rules(self) -> list[Ignore]:
        """The built-in per-provider noise profiles, then the user's `[[ignore]]` rules:
        compiled once per config."""
        return list(self.compiled_noise_rules)

    @cached_property
    def compiled_risk_rules(self) -> tuple[Rule, ...]:
        own = [rule.rule() for rule in self.rules]
        return tuple(own + list(BUILTIN_RULES) if self.builtin_rules else own)

    @cached_property
    def compiled_noise_rules(self) -> tuple[Ignore, ...]:
        return tuple(builtin_noise() + [entry.ignore() for entry in self.ignore])

    def remediation_of(self, stack: StackConfig) -> RemediationPolicy:
        given = stack.remediation.model_fields_set
        return self.remediation.model_copy(
            update={key: getattr(stack.remediation, key) for key in given}
        )

    def targets_of(self, stack: StackConfig) -> list[TargetConfig]:
        names = stack.notify if stack.notify is not None else self.notifications.default_targets
        return [target for target in self.targets if target.name in names]

    def target(self, name: str) -> TargetConfig | None:
        return next((target for target in self.targets if target.name == name), None)

    def locate(self, loc: Sequence[str | int]) -> str:
        """`file:line` of the key or table that `loc` names (`["targets", 1, "urls"]`),
        for errors found after loading; the file alone when the line is not found."""
        if self.source is None:
            return "config"
        try:
            text = read_text_capped(self.source, TEXT_FILE_LIMIT)
        except UnusableFileError:
            return str(self.source)
        return _where(self.source, text, loc)


class _DuplicateNameError(ValueError):
    def __init__(self, index: int, name: str, first: int, table: str = "stacks") -> None:
        kind = {"stacks": "stack", "targets": "target", "plugins": "plugin",
                "audit_sources": "audit source"}[table]  # fmt: skip
        super().__init__(
            f"duplicate {kind} name {name!r} (also {table}[{first}]): use a unique name"
        )
        self.index = index
        self.table = table


class _LocatedError(ValueError):
    """A problem found across tables, with the key it is about."""

    def __init__(self, loc: list[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = loc


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
        raw = read_capped(path, TEXT_FILE_LIMIT)
    except UnusableFileError as exc:
        if str(exc) == "does not exist":
            raise ConfigError(str(path), "config file not found", hint="check --config") from None
        raise ConfigError(str(path), f"config file {exc}") from None
    try:
        # A BOM (Windows editors write one) is not TOML; it says nothing, so it goes.
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}", "not UTF-8 text", hint="save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        where = f"{path}:{found.group(1)}" if found else str(path)
        reason = re.sub(r"\s*\(at .*\)$", "", str(exc))
        raise ConfigError(where, f"invalid TOML: {reason}", hint="fix the syntax") from None
    try:
        config = Config.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise _config_error(path, text, exc) from None
    return config.model_copy(
        update={"source": path.resolve(), "digest": hashlib.sha256(raw).hexdigest()}
    )


def _valid_project_file(project_file: Path) -> None:
    """The project's name, as Pulumi will read it: a bad one fails every engine run with
    a garbled message, so it is refused here, with the file that holds it."""
    import yaml

    try:
        project = yaml.safe_load(read_capped(project_file, TEXT_FILE_LIMIT))
    except UnusableFileError as exc:
        raise ValueError(f"{project_file} {exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{project_file} is not valid YAML: {_first_line(exc)}") from None
    name = project.get("name") if isinstance(project, dict) else None
    if not isinstance(name, str) or not _PULUMI_NAME.fullmatch(name):
        raise ValueError(
            f"{project_file}: name {name!r} is not a Pulumi project name: use {_NAME_RULE}"
        )


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# pydantic's error types, as what the TOML should have held.
_EXPECTED = {
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "string_type": "a string",
    "path_type": "a string (a path)",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "tuple_type": "a list",
    "list_type": "a list",
    "float_type": "a number",
}
_BOUNDS = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must not be empty",
}


def _toml_value(value: Any) -> str:
    """A value as the TOML file wrote it, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _config_error(path: Path, text: str, exc: ValidationError) -> ConfigError:
    errors = exc.errors()
    # An unknown key first: a misspelt key also makes its right spelling "missing".
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc: list[str | int] = list(error["loc"])
    ctx = error.get("ctx") or {}
    if isinstance(ctx.get("error"), _DuplicateNameError):
        loc = [ctx["error"].table, ctx["error"].index, "name"]
    if isinstance(ctx.get("error"), _LocatedError):
        loc = ctx["error"].loc
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
        valid = [name for name, f in _model_at(loc[:-1]).model_fields.items() if not f.exclude]
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        return ConfigError(
            where, f"unknown key {key!r}", hint=f"{guess}valid keys here: {', '.join(valid)}"
        )
    if kind == "missing":
        return ConfigError(where, f"{key}: required key is missing", hint=f"add {loc[-1]} = …")
    if kind in _EXPECTED:
        return ConfigError(
            where, f"{key}: expected {_EXPECTED[kind]}, got {_toml_value(error['input'])}"
        )
    if kind in _BOUNDS:
        return ConfigError(where, f"{key}: {_BOUNDS[kind].format(**ctx)}")
    if kind in ("literal_error", "enum"):
        return ConfigError(
            where,
            f"{key}: {_toml_value(error['input'])} is not allowed",
            hint=f"use one of: {ctx.get('expected', '')}",
        )
    message = str(error["msg"]).removeprefix("Value error, ")
    hint = None
    if " — " not in message and ": use " in message:
        message, hint = message.split(": use ", 1)
        hint = "use " + hint
    return ConfigError(where, f"{key}: {message}", hint=hint)


def _model_at(loc: Sequence[str | int]) -> type[BaseModel]:
    """The model of the table that `loc` names (`["stacks", 0, "remediation"]` →
    RemediationPolicy), for the keys it accepts."""
    model: type[BaseModel] = Config
    for part in loc:
        if isinstance(part, int):
            continue  # an entry of an array of tables
        field = model.model_fields.get(part)
        inner = _model_in(field.annotation) if field is not None else None
        if inner is None:
            break
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        if (found := _model_in(argument)) is not None:
            return found
    return None


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
            elif best is None and table[: len(loc)] == list(loc):  # an unknown table's header
                best = number
            continue
        key = re.match(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]+\")\s*=", line)
        in_table = key is not None and list(loc[: len(table)]) == table and len(loc) > len(table)
        if in_table and key is not None and key.group(1).strip('"') == loc[len(table)]:
            return number
    return best
