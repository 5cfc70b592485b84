"""Who may read the dashboard. On loopback, anyone local (as with the CLI and the state
directory). On any other address a credential is required, read from a file or a systemd
credential: `Authorization: Bearer TOKEN`, or basic auth with TOKEN as the password (any
user name), compared in constant time. The server refuses to start without one."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from driftwarden.config import is_loopback
from driftwarden.domain.errors import UsageError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Open without a credential: a liveness probe must not need the dashboard's secret, and
# it tells nothing about the fleet.
OPEN_PATHS = ("/healthz",)
# Paths with a credential of their own (the audit webhook's token), not the dashboard's.
OWN_CREDENTIAL_PREFIX = "/ingest/"


def require_credential(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback address without a credential."""
    if token is None and not is_loopback(host):
        raise UsageError(
            f"refusing to listen on {host} without a credential: the dashboard shows every "
            "stack's drift",
            hint="set [web] token_file (or token_credential), or listen on 127.0.0.1",
        )


def authorized(header: str | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        given = value
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        given = decoded.partition(":")[2]
    else:
        return False
    return hmac.compare_digest(given.encode(), token.encode())


class TokenAuth:
    """ASGI middleware: 401 (with both challenges) unless the request is authorized."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or (scope["type"] == "http" and (
            scope["path"] in OPEN_PATHS or scope["path"].startswith(OWN_CREDENTIAL_PREFIX)
        )):  # fmt: skip
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websocket or other protocol is served
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization")
        if authorized(header.decode("latin-1") if header else None, self.token):
            await self.app(scope, receive, send)
            return
        body = b"401: a credential is required (Authorization: Bearer TOKEN, or basic auth)\n"
        await send({
            "type": "http.response.start", "status": 401,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="driftwarden"'),
                (b"www-authenticate", b'Basic realm="driftwarden", charset="UTF-8"'),
            ],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})
