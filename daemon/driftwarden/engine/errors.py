"""Engine failures, each a distinct kind with a one-line reason and a fix."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import ErrorKind, urn_name
from driftwarden.domain.redact import redact_url


class EngineError(DriftwardenError):
    def __init__(self, kind: ErrorKind, message: str, *, hint: str | None = None) -> None:
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
# workspace.MissingError: "no resource plugin 'pulumi-resource-kubernetes' found in the
# workspace at version v4.25.0 or on your $PATH"
_MISSING_PLUGIN = re.compile(
    r"no (\w+) plugin 'pulumi-\w+-([\w.-]+)' found in the workspace(?: at version v([\w.+-]+))?"
)
_FIELD_CONFLICT = re.compile(r"Server-Side Apply field conflict|had an apply conflict")
_LOCKED = re.compile(r"the stack is currently locked|conflict: another update", re.IGNORECASE)
# "resource urn:…::readme violates plan: properties changed: =~content[{<the value>}]"
_VIOLATES_PLAN = re.compile(r"resource (\S+) violates plan: ([^\n]*)")
# A changed property in that message: "=~content[", "+-tags[" (the value follows; never kept).
_PLAN_PROPERTY = re.compile(r"(?:^|\s)[=~+\-]+([A-Za-z_][\w.-]*)\[")


def classify_failure(
    output: str, events: Iterable[Mapping[str, Any]], *, stack: str, backend_url: str
) -> EngineError:
    """Turn a failed engine run (its stderr/stdout and events) into one clear error."""
    if reason := program_error_reason(events):
        return EngineError(
            ErrorKind.PROGRAM_ERROR,
            f"the Pulumi program failed: {reason}",
            hint="fix the program (run `pulumi preview` in the project directory for details)",
        )
    # Before the text matches below: the engine's message quotes the new values.
    if violation := plan_violation(output, events):
        return EngineError(
            ErrorKind.PLAN_CHANGED,
            f"the infrastructure changed since the plan was made: {violation}; "
            "the engine refused to go beyond the plan",
            hint="review the new plan (`driftwarden remediate NAME --mode up --dry-run`)",
        )
    if missing := _MISSING_PLUGIN.search(output):
        kind, name, version = missing.groups()
        version_text = f" v{version}" if version else ""
        return EngineError(
            ErrorKind.PLUGIN_MISSING,
            f"the {kind} plugin {name}{version_text} is not installed and will not be downloaded",
            hint=f"add a [[plugins]] entry (name = {name!r}, version = {version or '…'!r}, "
            "path = the plugin's binary), or run `pulumi plugin install "
            f"{kind} {name} {version or 'VERSION'} --file PATH` with driftwarden's PULUMI_HOME "
            "(`driftwarden pulumi-env NAME`)",
        )
    if _PASSPHRASE.search(output):
        return EngineError(
            ErrorKind.PASSPHRASE,
            f"cannot decrypt the secrets of stack {stack!r}: the passphrase is missing or wrong",
            hint="point [daemon] passphrase_file at the passphrase the stack was created with",
        )
    if _LOCKED.search(output):
        return EngineError(
            ErrorKind.LOCKED,
            f"stack {stack!r} is locked by another update",
            hint="wait for it to finish, or run `pulumi cancel` if it crashed",
        )
    if _BACKEND.search(output):
        return EngineError(
            ErrorKind.BACKEND_UNREACHABLE,
            f"the state backend {redact_url(backend_url)} is unreachable: {first_error(output)}",
            hint="check [daemon] backend_url, the network and the credentials",
        )
    reason = resource_error(events) or first_error(output)
    hint = None
    if _FIELD_CONFLICT.search(reason):
        hint = (
            "another field manager (kubectl, a controller) now owns a field the program "
            "sets: undo that change, or let Pulumi take the field back with "
            'env = { PULUMI_K8S_ENABLE_PATCH_FORCE = "true" } on the stack'
        )
    return EngineError(ErrorKind.ENGINE_ERROR, f"pulumi failed: {reason}", hint=hint)


def plan_violation(output: str, events: Iterable[Mapping[str, Any]]) -> str | None:
    """`readme: content changed` when `up --plan` met a step its plan does not hold. The
    engine's message carries the new values: only the resource and property names are
    kept."""
    texts = [output] + [
        str(event["diagnosticEvent"].get("message", ""))
        for event in events
        if isinstance(event.get("diagnosticEvent"), Mapping)
    ]
    for text in texts:
        if match := _VIOLATES_PLAN.search(text):
            name = urn_name(match.group(1))
            properties = sorted(set(_PLAN_PROPERTY.findall(match.group(2))))
            changed = ", ".join(properties) if properties else "its planned step"
            return f"{name}: {changed} changed"
    return None


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


_ERRORS_OCCURRED = re.compile(r"\s*\d+ errors? occurred:?\s*$")
# The heading of a resource's diagnostics: "kubernetes:core/v1:ConfigMap (app-config):".
_DIAGNOSTICS_OF = re.compile(r"^([\w.-]+:[\w./-]*:[\w.-]+) \((.+)\):$")
_ROOT_STACK = "pulumi:pulumi:Stack"


def one_line(message: str) -> str:
    """An engine error message on one line, cause included: "Preview failed: 1 error
    occurred:" followed by its list becomes "Preview failed: <item>; <item>"."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return ""
    if not _ERRORS_OCCURRED.search(lines[0]):
        return " ".join(lines)
    head = _ERRORS_OCCURRED.sub("", lines[0]).strip().rstrip(":")
    items: list[str] = []
    for line in lines[1:]:
        if line.startswith("*") or not items:
            items.append(line.lstrip("*").strip())
        else:
            items[-1] += " " + line
    cause = "; ".join(items) or "no cause given"
    return f"{head}: {cause}" if head else cause


def resource_error(events: Iterable[Mapping[str, Any]]) -> str | None:
    """The first error the engine reported about a resource (not the stack's summary),
    with the resource: `web (kubernetes:core/v1:Service): Preview failed: …`."""
    for event in events:
        diagnostic = event.get("diagnosticEvent")
        if not isinstance(diagnostic, Mapping) or diagnostic.get("severity") != "error":
            continue
        urn = str(diagnostic.get("urn") or "")
        parts = urn.rsplit("::", 2)
        if len(parts) != 3 or parts[1] == _ROOT_STACK:
            continue
        return f"{parts[2]} ({parts[1]}): {one_line(str(diagnostic.get('message', '')))}"
    return None


def first_error(output: str) -> str:
    """The first error in pulumi's printed output, whole, with the resource it is about;
    a resource's error wins over the stack's summary ("preview failed")."""
    lines = [line.strip() for line in output.splitlines()]
    found: list[tuple[str, str]] = []  # (resource type, message)
    resource, kind = "", ""
    for index, line in enumerate(lines):
        if heading := _DIAGNOSTICS_OF.match(line):
            kind, resource = heading.group(1), f"{heading.group(2)} ({heading.group(1)}): "
            continue
        if not line.lower().startswith("error:"):
            continue
        body = [line[6:].strip()]
        if _ERRORS_OCCURRED.search(body[0]):  # the cause is the list that follows
            for item in lines[index + 1 :]:
                if not item or _DIAGNOSTICS_OF.match(item):
                    break
                body.append(item)
        found.append((kind, resource + one_line("\n".join(body))))
    if not found:
        rest = [line for line in lines if line]
        return rest[-1] if rest else "no output"
    return next((text for kind, text in found if kind and kind != _ROOT_STACK), found[0][1])
