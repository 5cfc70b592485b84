"""URLs made safe to show: one rule for every URL a message, a log or `config check`
names (notification targets, state backends). The audit store's URL has its own, in
store.db: SQLAlchemy knows where a database URL keeps its password.

Notification URLs carry tokens anywhere (`slack://T000/B000/XXXX`: the "host" is one),
so only a scheme and a host that names a machine are kept; credentials, path and query
become `***`. A `file://` URL (the default state backend) is a local path: it carries no
credential and tells a user which backend is meant, so it is kept, its query masked.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

MASK = "***"
EMAIL_SCHEMES = frozenset({"mailto", "mailtos"})
_HOST_RE = re.compile(r"^(?P<host>[A-Za-z0-9\-._~%]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d+))?$")


def split_url(url: str) -> tuple[str, str, str, str]:
    """(scheme, userinfo, host[:port], rest) without validating anything (tokens aren't
    hostnames: `tgram://123:ABC/…` must not fail on a non-numeric "port")."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", "", url
    cut = len(rest)
    for char in "/?#":
        index = rest.find(char)
        if index != -1:
            cut = min(cut, index)
    netloc, tail = rest[:cut], rest[cut:]
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        userinfo, hostport = "", netloc
    return scheme, userinfo, hostport, tail


def _host_is_public(scheme: str, hostport: str) -> bool:
    """Whether the host part names a machine (kept) rather than carrying a token."""
    match = _HOST_RE.match(hostport)
    if match is None:
        return False
    if scheme.lower() in EMAIL_SCHEMES:
        return True  # mailto://user:pass@HOST: always the mail server
    host = match["host"]
    return bool(match["port"]) or "." in host or host.startswith("[") or host == "localhost"


def redact_url(url: str) -> str:
    """The URL with its scheme and host only: credentials, path and query become `***`.

    `slack://T000/B000/XXXX` -> `slack://***` (its "host" is a token);
    `json://127.0.0.1:8080/hook?token=abc` -> `json://127.0.0.1:8080/***`;
    `mailto://user:pass@host` -> `mailto://***@host`;
    `file:///var/lib/driftwarden/backend` -> itself (a local path).
    """
    url = url.strip()
    scheme, userinfo, hostport, tail = split_url(url)
    if not scheme:
        return MASK
    if scheme.lower() == "file" and not userinfo:
        query = re.search(r"[?#]", url)
        return url if query is None else url[: query.start() + 1] + MASK
    if not _host_is_public(scheme, hostport):
        return f"{scheme}://{MASK}" if (hostport or userinfo or tail) else f"{scheme}://"
    redacted = f"{scheme}://{MASK + '@' if userinfo else ''}{hostport}"
    if tail.strip("/?#"):
        redacted += f"/{MASK}"
    return redacted


def secret_parts(url: str) -> list[str]:
    """The fragments of `url` that may be credentials, longest first (to mask them in
    text that quotes them, e.g. a library's error message)."""
    scheme, userinfo, hostport, tail = split_url(url.strip())
    parts: set[str] = set()
    if userinfo:
        parts.update(userinfo.split(":", 1))
        parts.add(userinfo)
    if not _host_is_public(scheme, hostport):
        parts.update(hostport.split(":"))
        parts.add(hostport)
    path, _, query = tail.partition("?")
    query = query.partition("#")[0]
    parts.update(segment for segment in path.split("/") if segment)
    parts.update(value for _, value in parse_qsl(query, keep_blank_values=True) if value)
    parts.update([unquote(part) for part in parts])
    # Very short fragments ("1", "on") would mangle the message and hide nothing.
    return sorted((part for part in parts if len(part) >= 3), key=len, reverse=True)
