"""Engine failures, each a distinct kind with a one-line reason and a fix."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from driftwarden.errors import DriftwardenError


class EngineErrorKind(StrEnum):
    CLI_MISSING = "cli_missing"
    CLI_VERSION = "cli_version"
    NOT_DEPLOYED = "not_deployed"
    PROGRAM_ERROR = "program_error"
    PASSPHRASE = "passphrase"
    BACKEND_UNREACHABLE = "backend_unreachable"
    LOCKED = "locked"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    ENGINE_ERROR = "engine_error"


class EngineError(DriftwardenError):
    def __init__(self, kind: EngineErrorKind, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind


_PYTHON_EXCEPTION = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)):\s*(.*)$")
_PASSPHRASE = re.compile(
    r"passphrase must be set|incorrect passphrase|PULUMI_CONFIG_PASSPHRASE|"
    r"decrypting secret|failed to decrypt|constructing secrets manager",
    re.IGNORECASE,
)
_BACKEND = re.compile(
    r"could not (?:reach|login|log in)|failed to (?:log ?in|read backend)|no such host|"
    r"connection refused|unable to open bucket|read-only file system|"
    r"could not connect|dial tcp|getting user info|problem logging in|"
    r"must be set for login|get credentials|blob \(key|performing HTTP request|"
    r"NoSuchBucket|AccessDenied",
    re.IGNORECASE,
)
_LOCKED = re.compile(r"the stack is currently locked|conflict: another update", re.IGNORECASE)


def classify_failure(
    output: str, events: Iterable[Mapping[str, Any]], *, stack: str, backend_url: str
) -> EngineError:
    """Turn a failed engine run (its stderr/stdout and events) into one clear error."""
    if reason := program_error_reason(events):
        return EngineError(
            EngineErrorKind.PROGRAM_ERROR,
            f"the Pulumi program failed: {reason}",
            hint="fix the program (run `pulumi preview` in the project directory for details)",
        )
    if _PASSPHRASE.search(output):
        return EngineError(
            EngineErrorKind.PASSPHRASE,
            f"cannot decrypt the secrets of stack {stack!r}: the passphrase is missing or wrong",
            hint="point [daemon] passphrase_file at the passphrase the stack was created with",
        )
    if _LOCKED.search(output):
        return EngineError(
            EngineErrorKind.LOCKED,
            f"stack {stack!r} is locked by another update",
            hint="wait for it to finish, or run `pulumi cancel` if it crashed",
        )
    if _BACKEND.search(output):
        return EngineError(
            EngineErrorKind.BACKEND_UNREACHABLE,
            f"the state backend {redact_url(backend_url)} is unreachable: "
            f"{last_error_line(output)}",
            hint="check [daemon] backend_url, the network and the credentials",
        )
    return EngineError(EngineErrorKind.ENGINE_ERROR, f"pulumi failed: {last_error_line(output)}")


def program_error_reason(events: Iterable[Mapping[str, Any]]) -> str | None:
    """The exception line of a program that raised, from the engine's diagnostics."""
    reason = None
    for event in events:
        diagnostic = event.get("diagnosticEvent")
        if not isinstance(diagnostic, Mapping) or diagnostic.get("severity") != "error":
            continue
        for line in str(diagnostic.get("message", "")).splitlines():
            if match := _PYTHON_EXCEPTION.match(line):
                reason = f"{match.group(1)}: {match.group(2)}".strip().rstrip(":")
    return reason


def last_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.lower().startswith("error:"):
            return line[6:].strip()
    return lines[-1] if lines else "no output"


def redact_url(url: str) -> str:
    """Drop credentials and query strings (tokens) from a URL before it is shown."""
    url = re.sub(r"//[^/@]*@", "//***@", url)
    return url.split("?", 1)[0]
