"""The configuration: its models and the TOML file they are loaded from (settings.py)."""

from driftwarden.config.settings import (
    NOTIFY_EVENTS,
    AuditSourceConfig,
    Config,
    RemediationPolicy,
    RuleConfig,
    SeverityName,
    StackConfig,
    TargetConfig,
    WebSettings,
    find_config,
    is_loopback,
    is_postgresql_url,
    load_config,
    split_listen,
)

__all__ = [
    "NOTIFY_EVENTS",
    "AuditSourceConfig",
    "Config",
    "RemediationPolicy",
    "RuleConfig",
    "SeverityName",
    "StackConfig",
    "TargetConfig",
    "WebSettings",
    "find_config",
    "is_loopback",
    "is_postgresql_url",
    "load_config",
    "split_listen",
]
