"""What a notification says: titles and bodies, Markdown for chat and plain text for email.

Pure: no I/O. One message per stack per check run, never one per property. Values arrive
already redacted (a secret finding carries `[secret]`), and a secret finding's values are
never shown whatever they hold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from driftwarden.domain import markdown as md
from driftwarden.domain.model import (
    REDACTED,
    Check,
    FindingTransition,
    NotificationEvent,
    TransitionKind,
    describe_attribution,
    urn_name,
)
from driftwarden.domain.text import ELLIPSIS, json_value, shorten, whole_resource
from driftwarden.drift.rules import severity_rank

EVENT_OF_TRANSITION: dict[TransitionKind, NotificationEvent] = {
    "opened": NotificationEvent.DRIFT_NEW,
    "changed": NotificationEvent.DRIFT_CHANGED,
    "resolved": NotificationEvent.DRIFT_RESOLVED,
    "accepted": NotificationEvent.DRIFT_ACCEPTED,
}

PREFIX = "[driftwarden]"
VALUE_CHARS = 80  # a value longer than this is shortened with "…"
ERROR_CHARS = 1000  # the part of a failed check's error a message quotes
ARROW = "→"
ARROW_CAUSE = "—"
_KIND_ORDER = {"opened": 0, "changed": 1, "accepted": 2, "resolved": 3}
# Only what would change the rendering: chat flavours (Slack) show other escapes verbatim.


@dataclass(frozen=True)
class Message:
    """One notification: `event` is what it is mainly about (e.g. "drift.new")."""

    event: NotificationEvent
    title: str
    markdown: str  # for chat targets
    text: str  # plain text, for email


# ---------------------------------------------------------------------------- formats


@dataclass(frozen=True)
class _Format:
    code: Callable[[str], str]  # a path, value or type
    name: Callable[[str], str]  # a resource name
    prose: Callable[[str], str]  # free text from elsewhere (an actor, a commit subject)
    bullet: str
    blank_between_resources: bool


_MARKDOWN = _Format(
    code=md.code,
    name=lambda name: f"**{md.escape(name)}**",
    prose=md.escape,
    bullet="- ",
    blank_between_resources=True,
)
_TEXT = _Format(
    code=lambda text: text.replace("\n", " "),
    name=lambda name: name.replace("\n", " "),
    prose=lambda text: text.replace("\n", " "),
    bullet="  - ",
    blank_between_resources=True,
)


# ---------------------------------------------------------------------------- values


def format_value(value: Any, *, limit: int = VALUE_CHARS) -> str:
    """A value as JSON, shortened to `limit`; `(absent)` where there is none."""
    return "(absent)" if value is None else json_value(value, limit=limit)


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


# ---------------------------------------------------------------------------- findings


def _line(transition: FindingTransition, fmt: _Format) -> str:
    """One finding as one bullet line."""
    t = transition
    code = fmt.code
    secret = t.secret

    def value(raw: Any) -> str:
        return code(REDACTED if secret else format_value(raw))

    if not t.path:
        what = whole_resource(t.change, t.check)
        if t.kind == "opened":
            return f"{fmt.bullet}{what}"
        if t.kind == "resolved":
            return f"{fmt.bullet}resolved (was: {what})"
        if t.kind == "accepted":
            return f"{fmt.bullet}accepted into the state, not fixed (was: {what})"
        before = whole_resource(str((t.previous or {}).get("change", t.change)), t.check)
        return f"{fmt.bullet}changed: was {before}, now {what}"

    path = code(t.path)
    if t.kind == "opened":
        return f"{fmt.bullet}{path}: {value(t.expected)} {ARROW} {value(t.actual)}"
    if t.kind == "resolved":
        return f"{fmt.bullet}{path}: resolved (was {value(t.expected)} {ARROW} {value(t.actual)})"
    if t.kind == "accepted":
        return (f"{fmt.bullet}{path}: accepted into the state, not fixed: {value(t.actual)} is "
                "what the state now expects")  # fmt: skip
    previous = t.previous or {}
    line = f"{fmt.bullet}{path}: changed: {value(previous.get('actual'))} {ARROW} {value(t.actual)}"
    if secret or previous.get("expected", t.expected) == t.expected:
        return f"{line} (expected {value(t.expected)})"
    return f"{line} (expected was {value(previous.get('expected'))}, now {value(t.expected)})"


def _grouped(
    transitions: Sequence[FindingTransition],
) -> list[tuple[str, str, list[FindingTransition]]]:
    """(urn, type, findings) per resource: new before changed before resolved, then by name."""
    groups: dict[str, list[FindingTransition]] = {}
    for transition in transitions:
        groups.setdefault(transition.urn, []).append(transition)
    ordered = []
    for urn, items in groups.items():
        items.sort(key=lambda t: (_KIND_ORDER.get(t.kind, 9), t.path))
        ordered.append((urn, items[0].type, items))
    ordered.sort(key=lambda group: (_KIND_ORDER.get(group[2][0].kind, 9), urn_name(group[0])))
    return ordered


def _omission(properties: int, resources: int) -> str:
    noun = "property" if properties == 1 else "properties"
    return f"{ELLIPSIS}and {properties} more {noun} on {_plural(resources, 'resource')}"


_Groups = list[tuple[str, str, list[FindingTransition]]]


def _body(
    sections: Sequence[tuple[list[str], _Groups]],
    fmt: _Format,
    max_chars: int,
    final: str,
) -> str:
    """The resource blocks, cut at a line boundary when they would exceed `max_chars`.

    `sections` are (heading lines, resource groups); a heading, like a resource's header,
    is only written with at least one of its lines. What is cut is counted in a note before
    the `final` line, which is always there.
    """
    total = sum(len(items) for _, groups in sections for _, _, items in groups)
    resources = sum(len(groups) for _, groups in sections)
    lines: list[str] = []
    used = 0  # length of "\n".join(lines), give or take a separator
    shown = 0
    omitted_resources = 0
    cut = False
    for heading, groups in sections:
        pending_heading = list(heading)
        for urn, type_, items in groups:
            if cut:
                omitted_resources += 1
                continue
            header: list[str] = []
            if pending_heading:
                header.extend([*([""] if lines else []), *pending_heading, ""])
            elif fmt.blank_between_resources and lines:
                header.append("")
            cause = (describe_attribution(items[0].attribution)
                     if items[0].kind in ("opened", "changed", "accepted") else "")  # fmt: skip
            suffix = f" {ARROW_CAUSE} {fmt.prose(cause)}" if cause else ""
            header.append(f"{fmt.name(urn_name(urn))} ({fmt.code(type_)}){suffix}")
            for written, item in enumerate(items):
                new = ([] if written else header) + [_line(item, fmt)]
                grown = used + sum(len(line) + 1 for line in new)
                left = total - shown - 1
                tail = len(final) + 2 + (len(_omission(left, resources)) + 1 if left else 0)
                if grown + tail > max_chars:
                    cut = True
                    break
                lines.extend(new)
                used = grown
                shown += 1
                pending_heading = []
            if cut:
                omitted_resources += 1  # this one lost some of its lines
    tail_lines = [_omission(total - shown, omitted_resources)] if shown < total else []
    tail_lines.append(final)
    return (("\n".join(lines) + "\n\n") if lines else "") + "\n".join(tail_lines)


def _title(stack: str, transitions: Sequence[FindingTransition]) -> str:
    if all(t.check == "state" for t in transitions):  # what a refresh or edit took in
        opened = {t.urn for t in transitions if t.kind == "opened"}
        if opened:
            return (
                f"{PREFIX} {stack}: dangerous values accepted into state on "
                f"{_plural(len(opened), 'resource')}"
            )
        return (
            f"{PREFIX} {stack}: accepted values no longer in state on "
            f"{_plural(len({t.urn for t in transitions}), 'resource')}"
        )
    code_only = all(t.check == Check.CODE for t in transitions)
    resources: dict[str, set[str]] = {"opened": set(), "changed": set(), "resolved": set(),
                                      "accepted": set()}  # fmt: skip
    for t in transitions:
        resources.setdefault(t.kind, set()).add(t.urn)
    counts = [(kind, len(resources[kind]))
              for kind in ("opened", "changed", "accepted", "resolved")]  # fmt: skip
    counts = [(kind, count) for kind, count in counts if count]
    parts = []
    for position, (kind, count) in enumerate(counts):
        noun = _plural(count, "resource")
        if position:  # the leading part says what happened; the others only count
            short = {"opened": "new", "changed": "changed", "resolved": "resolved",
                     "accepted": "accepted into state"}[kind]  # fmt: skip
            parts.append(f"{count} {short}")
        elif kind == "opened":
            parts.append(f"{noun} with pending changes" if code_only else f"{noun} drifted")
        elif kind == "changed":
            what = "pending changes" if code_only else "drift"
            parts.append(f"{what} changed on {noun}")
        elif kind == "accepted":
            parts.append(f"drift accepted into state, not fixed, on {noun}")
        else:
            what = "pending changes" if code_only else "drift"
            parts.append(f"{what} resolved on {noun}")
    return f"{PREFIX} {stack}: {', '.join(parts)}"


def render_findings(
    stack: str, transitions: Sequence[FindingTransition], *, max_chars: int = 3500
) -> Message | None:
    """One message for a stack's finding transitions of one scan; None when there are none."""
    if not transitions:
        return None
    kinds = {t.kind for t in transitions}
    main = next(kind for kind in ("opened", "changed", "accepted", "resolved") if kind in kinds)
    groups = _grouped(transitions)
    final = f"See everything: driftwarden drift show {stack}"
    return Message(
        event=EVENT_OF_TRANSITION[main],
        title=_title(stack, transitions),
        markdown=_body([([], groups)], _MARKDOWN, max_chars, final),
        text=_body([([], groups)], _TEXT, max_chars, final),
    )


# ---------------------------------------------------------------------------- digest


@dataclass(frozen=True)
class DigestStack:
    """One stack's open findings (as "opened" transitions, values already redacted)."""

    name: str
    findings: Sequence[FindingTransition]
    open_since: datetime  # when its oldest open finding was first seen


def _highest(findings: Sequence[FindingTransition]) -> str | None:
    return max((f.severity for f in findings), key=severity_rank, default=None)


def _digest_heading(stack: DigestStack, fmt: _Format) -> list[str]:
    resources = len({f.urn for f in stack.findings})
    summary = (
        f"{_plural(resources, 'resource')}, {_plural(len(stack.findings), 'finding')}, "
        f"open since {stack.open_since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    )
    highest = _highest(stack.findings)
    if highest:
        summary += f", highest severity {highest}"
    if fmt is _MARKDOWN:
        return [f"### {md.escape(stack.name)} {ARROW_CAUSE} {summary}"]
    heading = f"{stack.name} {ARROW_CAUSE} {summary}"
    return [heading, "=" * len(heading)]


def render_digest(stacks: Sequence[DigestStack], *, max_chars: int = 3500) -> Message | None:
    """A recap of everything still open on a target's stacks; None when nothing is.

    Stacks and resources come most severe first, then by name.
    """
    stacks = sorted(
        (s for s in stacks if s.findings),
        key=lambda s: (-severity_rank(_highest(s.findings)), s.name),
    )
    if not stacks:
        return None
    resources = sum(len({f.urn for f in s.findings}) for s in stacks)
    title = (
        f"{PREFIX} digest: {_plural(len(stacks), 'stack')} with open findings "
        f"({_plural(resources, 'resource')})"
    )
    if len(stacks) == 1:
        final = f"See everything: driftwarden drift show {stacks[0].name}"
    else:
        final = "See everything: driftwarden status, then driftwarden drift show NAME"

    def sections(fmt: _Format) -> list[tuple[list[str], _Groups]]:
        return [
            (
                _digest_heading(stack, fmt),
                sorted(
                    _grouped(stack.findings),
                    key=lambda g: (-severity_rank(_highest(g[2])), urn_name(g[0])),
                ),
            )
            for stack in stacks
        ]

    return Message(
        event=NotificationEvent.DRIFT_DIGEST,
        title=title,
        markdown=_body(sections(_MARKDOWN), _MARKDOWN, max_chars, final),
        text=_body(sections(_TEXT), _TEXT, max_chars, final),
    )


# ---------------------------------------------------------------------------- checks, test


def render_check_failing(stack: str, check: str, error: str, consecutive: int) -> Message:
    """A check of `stack` has failed `consecutive` times in a row."""
    times = _plural(consecutive, "time")
    error = shorten(error.strip(), ERROR_CHARS) or "(no error message)"
    history = f"driftwarden history --stack {stack}"
    fenced = error.replace("```", "'''")  # the error must not close its code block
    markdown = (
        f"The {check} check of {md.code(stack)} failed {times} in a row.\n\n"
        f"Last error:\n```\n{fenced}\n```\n\n"
        f"See the operations: {md.code(history)}"
    )
    text = (
        f"The {check} check of {stack} failed {times} in a row.\n\n"
        f"Last error:\n{error}\n\n"
        f"See the operations: {history}"
    )
    title = f"{PREFIX} {stack}: {check} check failing ({times} in a row)"
    return Message(NotificationEvent.CHECK_FAILING, title, markdown, text)


def render_check_recovered(stack: str, check: str, failures: int) -> Message:
    """A check of `stack` succeeded again after `failures` consecutive failures."""
    after = _plural(failures, "consecutive failure")
    markdown = (
        f"The {check} check of {md.code(stack)} succeeded again after {after}.\n\n"
        f"Current state: {md.code('driftwarden status')}"
    )
    text = (
        f"The {check} check of {stack} succeeded again after {after}.\n\n"
        f"Current state: driftwarden status"
    )
    title = f"{PREFIX} {stack}: {check} check recovered"
    return Message(NotificationEvent.CHECK_FAILING, title, markdown, text)


def render_test(target: str) -> Message:
    """The message `driftwarden notify test` sends to a target."""
    markdown = (
        f"This is a test message from driftwarden to the target {md.code(target)}.\n\n"
        "If you can read it, notifications to this target work."
    )
    text = (
        f"This is a test message from driftwarden to the target {target}.\n\n"
        "If you can read it, notifications to this target work."
    )
    return Message(NotificationEvent.TEST, f"{PREFIX} test notification ({target})", markdown, text)


def render_remediation(
    stack: str,
    event: NotificationEvent,
    headline: str,
    lines: Sequence[str],
    command: str | None = None,
) -> Message:
    """A remediation step: `remediation.needs_approval`, `.succeeded` or `.failed`.

    `lines` name the guardrail and resources, or the plan; `command` is what a human runs
    (the approval), shown last.
    """
    closing = command or f"driftwarden history --stack {stack}"
    verb = "Approve with" if command else "See the operations"
    markdown = "\n".join(
        [md.escape(headline), "", *(f"- {md.escape(line)}" for line in lines), "",
         f"{verb}: {md.code(closing)}"]
    )  # fmt: skip
    text = "\n".join([headline, "", *(f"- {line}" for line in lines), "", f"{verb}: {closing}"])
    return Message(event, f"{PREFIX} {stack}: {headline}", markdown, text)
