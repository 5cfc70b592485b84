"""The audit webhook: `POST /ingest/audit/NAME`, where a Kubernetes API server's audit
webhook backend posts `EventList` batches for the `[[audit_sources]]` entry NAME.

It needs the source's own bearer token, on loopback too (401 without it, compared in
constant time); the dashboard's token does not open it. A body over BODY_LIMIT is
refused (413) before it is read. The events are committed before the 200: an API server
that got its answer never has to send them again. It answers fast (the API server blocks
or drops while a webhook is slow): the store write runs beside the event loop, and the
checks the events ask for are requested later, by the watch.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from driftwarden.config import AuditSourceConfig, Config
from driftwarden.domain.errors import DriftwardenError
from driftwarden.service.logs import logger
from driftwarden.service.sources.platform import readers
from driftwarden.service.sources.watch import AuditWatch
from driftwarden.sources.kubernetes import read_event_list

INGEST_PREFIX = "/ingest/"
# The largest batch accepted: the API server's own default batch is far smaller.
BODY_LIMIT = 32 * 1024 * 1024


def ingest_endpoint(
    watch: Callable[[], AuditWatch | None], config: Callable[[], Config]
) -> Callable[[Request], object]:
    async def ingest(request: Request) -> Response:
        source = _source(config(), request.path_params["name"])
        if source is None:
            return _answer(404, "no audit source with a webhook by that name")
        try:
            token = source.webhook_token()
        except DriftwardenError as exc:
            logger.error("audit webhook token unreadable",
                         extra={"source": source.name, "error": str(exc)})  # fmt: skip
            return _answer(503, "the source's token cannot be read; the server's log says why")
        if token is None or not _authorized(request.headers.get("authorization"), token):
            return _answer(401, "a bearer token is required", {"www-authenticate": "Bearer"})
        running = watch()
        if running is None:
            return _answer(503, "this server stores no audit events")
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > BODY_LIMIT):
            return _answer(413, f"a batch is at most {BODY_LIMIT} bytes")
        try:
            body = await _read(request)
        except ValueError:
            return _answer(413, f"a batch is at most {BODY_LIMIT} bytes")
        except ClientDisconnect:
            return _answer(400, "the body was cut short")
        reader = readers(running.runtime)[source.name]
        try:
            verdicts = read_event_list(json.loads(body), source.name, reader.sensitive)
        except (ValueError, AttributeError):
            return _answer(400, "not an audit.k8s.io/v1 EventList")
        try:
            stored = await run_in_threadpool(reader.store, verdicts, None)
        except DriftwardenError as exc:
            logger.error("audit webhook batch not stored",
                         extra={"source": source.name, "error": str(exc)})  # fmt: skip
            return _answer(503, "not stored; send it again")
        running.saw(reader, stored.events, time.monotonic())
        return JSONResponse({"received": len(verdicts), "stored": len(stored.events)})

    return ingest


def _source(config: Config, name: str) -> AuditSourceConfig | None:
    return next(
        (s for s in config.audit_sources if s.name == name and (
            s.webhook_token_file is not None or s.webhook_token_credential is not None)),
        None,
    )  # fmt: skip


def _authorized(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())  # fmt: skip


async def _read(request: Request) -> bytes:
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > BODY_LIMIT:
            raise ValueError("too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message, "status": status}, status_code=status,
                        headers=headers)  # fmt: skip
