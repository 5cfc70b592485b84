"""The configuration: its models and the TOML file they are loaded from (settings.py)."""

from driftwarden.config.settings import (
    NOTIFY_EVENTS,
    Config,
    RemediationPolicy,
    RuleConfig,
    SeverityName,
    StackConfig,
    TargetConfig,
    find_config,
    load_config,
)

__all__ = [
    "NOTIFY_EVENTS",
    "Config",
    "RemediationPolicy",
    "RuleConfig",
    "SeverityName",
    "StackConfig",
    "TargetConfig",
    "find_config",
    "load_config",
]
