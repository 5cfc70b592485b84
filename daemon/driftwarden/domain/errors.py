"""Errors a user can act on: one line saying what, where, and how to fix it."""

from __future__ import annotations


class DriftwardenError(Exception):
    """An expected failure with a message fit for one line on stderr."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class ConfigError(DriftwardenError):
    """The configuration is invalid; `location` is `file:line` or `file`."""

    exit_code = 2

    def __init__(self, location: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{location}: {message}", hint=hint)
        self.location = location


class UsageError(DriftwardenError):
    exit_code = 2


class StoreError(DriftwardenError):
    """The audit store cannot be opened or read: missing, damaged, unreachable."""
