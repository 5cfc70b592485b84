"""The dashboard's ASGI application: server-rendered pages (no JavaScript needed), each
with a JSON twin (`Accept: application/json` or `?format=json`) that is the same data
the CLI's `--json` prints, plus `/metrics` and `/healthz`. Read-only: GET (and HEAD)
only, so there is no form to forge and nothing to change — but for the audit webhook's
POST, which has a credential of its own (web/ingest.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jinja2
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from driftwarden.config import Config, is_loopback
from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import attribution_from_dict, describe_attribution, urn_name
from driftwarden.domain.text import SEVERITIES, STACK_STATES
from driftwarden.domain.version import __version__
from driftwarden.service.logs import logger
from driftwarden.service.read.metrics import snapshot
from driftwarden.service.read.pages import (
    SORT_KEYS,
    AuditQuery,
    FleetQuery,
    NotFoundError,
    audit_page,
    finding_page,
    fleet_page,
    stack_page,
)
from driftwarden.web.auth import (
    OWN_CREDENTIAL_PREFIX,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    TokenAuth,
)
from driftwarden.web.ingest import ingest_endpoint
from driftwarden.web.metrics import FleetCollector, registry_for

if TYPE_CHECKING:
    from driftwarden.service.runtime import Runtime
    from driftwarden.service.sources.watch import AuditWatch
    from driftwarden.store.audit import VerifyReport

# Every page: no script, no frame, no asset from elsewhere; styles are inline.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
# `/healthz`: the daemon loop counts as stuck when it has not ticked for this long.
LOOP_STALE_SECONDS = 30.0


@dataclass
class WebState:
    """What the pages share: the runtime (a read-only store of its own), the running
    config when the server runs inside `run` (a reload replaces it), the daemon loop's
    heartbeat there, and the last audit verification."""

    reader: Runtime
    running_config: Callable[[], Config] | None = None
    loop_heartbeat: Callable[[], float] | None = None  # time.monotonic() of its last tick
    # What stores the audit webhook's events and requests the checks they ask for.
    watch: AuditWatch | None = None
    _verified: tuple[VerifyReport, datetime] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _verifying: threading.Lock = field(default_factory=threading.Lock)

    @property
    def runtime(self) -> Runtime:
        """The reader, with the config the daemon runs now (after any reload): a view per
        request; the shared reader is never written."""
        if self.running_config is None:
            return self.reader
        return self.reader.pinned(self.running_config())

    def verify(self) -> VerifyReport:
        """Verify the chain; one verify at a time (a second request waits for the first,
        then reuses a result at most a second old rather than reading it all again)."""
        asked = datetime.now(UTC)
        with self._verifying:
            with self._lock:
                done = self._verified
            if done is not None and (done[1] - asked).total_seconds() > -1:
                return done[0]
            report = self.reader.store.audit.verify(self.reader.store)
            with self._lock:
                self._verified = (report, datetime.now(UTC))
            return report

    def last_verify(self) -> tuple[VerifyReport, datetime] | None:
        with self._lock:
            return self._verified


class _Json(JSONResponse):
    """JSON as the CLI prints it: a NaN stored in a value stays NaN rather than failing."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, default=str).encode()


def json_link(request: Request) -> str:
    """This page's JSON twin, with the page's own filters."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "format"]
    return f"{request.url.path}?{urlencode([*query, ('format', 'json')])}"


def with_query(request: Request, **changes: str) -> str:
    """This page with `changes` to its query string (filters kept)."""
    query = {k: v for k, v in request.query_params.items() if k not in changes}
    return f"{request.url.path}?{urlencode({**query, **changes})}"


def wants_json(request: Request) -> bool:
    if request.query_params.get("format") == "json":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("driftwarden.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.update(
        version=__version__, severities=SEVERITIES, states=STACK_STATES, sort_keys=SORT_KEYS
    )
    # A value as JSON, as the CLI shows it; the template escapes it like any text.
    environment.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    environment.filters["attribution"] = lambda data: describe_attribution(
        attribution_from_dict(data)
    )
    environment.filters["resource"] = urn_name
    environment.globals.update(json_link=json_link, with_query=with_query)
    return environment


def _respond(
    templates: jinja2.Environment,
    request: Request,
    template: str,
    data: dict[str, Any],
    started: float,
    status: int = 200,
) -> Response:
    """The page, or its JSON twin, with the server's time spent on it."""
    response: Response
    if wants_json(request):
        response = _Json(data, status_code=status)
    else:
        page = templates.get_template(template).render(data=data, request=request)
        response = HTMLResponse(page, status_code=status)
    response.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    response.headers["vary"] = "accept"
    return response


def _page(
    templates: jinja2.Environment, template: str, build: Callable[[Request], dict[str, Any]]
) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            data = build(request)
        except NotFoundError as exc:
            error = {"error": exc.message, "status": 404}
            return _respond(templates, request, "error.html.j2", error, started, status=404)
        except DriftwardenError as exc:
            error = {"error": exc.message, "status": 503}
            return _respond(templates, request, "error.html.j2", error, started, status=503)
        except Exception:  # the store went away mid-request, or a bug: logged here
            logger.exception("page failed", extra={"path": request.url.path})
            error = {"error": "the page failed; the server's log says why", "status": 500}
            return _respond(templates, request, "error.html.j2", error, started, status=500)
        return _respond(templates, request, template, data, started)

    return endpoint


def _healthz(state: WebState) -> Callable[[Request], Response]:
    def healthz(_request: Request) -> Response:
        problems = []
        store = state.reader.store.answers()
        if store is not None:  # the detail (hosts, users) to the log, not to anyone asking
            logger.warning("health check: the store does not answer", extra={"error": store})
            store = "unreachable"
            problems.append("store: unreachable")
        loop: dict[str, Any] | None = None
        if state.loop_heartbeat is not None:
            age = time.monotonic() - state.loop_heartbeat()
            loop = {"alive": age < LOOP_STALE_SECONDS, "last_tick_seconds_ago": round(age, 1)}
            if not loop["alive"]:
                problems.append(f"daemon loop: no tick for {age:.0f} s")
        body = {"ok": not problems, "store": store or "ok", "loop": loop, "problems": problems}
        return _Json(body, status_code=200 if not problems else 503)

    return healthz


def create_app(state: WebState, *, token: str | None = None) -> ASGIApp:
    """The ASGI app; behind the token check when `token` is set."""
    templates = _environment()
    registry = registry_for(FleetCollector(lambda: snapshot(state.runtime), state.last_verify))

    def fleet(request: Request) -> dict[str, Any]:
        return fleet_page(state.runtime, FleetQuery.parse(request.query_params))

    def stack(request: Request) -> dict[str, Any]:
        return stack_page(state.runtime, request.path_params["name"])

    def finding(request: Request) -> dict[str, Any]:
        params = request.path_params
        return finding_page(state.runtime, params["name"], params["finding_id"])

    def audit(request: Request) -> dict[str, Any]:
        verify = request.query_params.get("verify") in ("1", "true", "yes")
        data = audit_page(state.runtime, AuditQuery.parse(request.query_params))
        if verify:
            data["verify"] = state.verify().to_dict()
        return data

    def metrics(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/", _page(templates, "fleet.html.j2", fleet), methods=["GET"]),
        Route("/stacks/{name}", _page(templates, "stack.html.j2", stack), methods=["GET"]),
        Route(
            "/stacks/{name}/findings/{finding_id}",
            _page(templates, "finding.html.j2", finding),
            methods=["GET"],
        ),
        Route("/audit", _page(templates, "audit.html.j2", audit), methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", _healthz(state), methods=["GET"]),
        Route(
            f"{OWN_CREDENTIAL_PREFIX}audit/{{name}}",
            ingest_endpoint(lambda: state.watch, lambda: state.runtime.config),
            methods=["POST"],
        ),
    ]
    app: ASGIApp = Starlette(routes=routes)
    # Without a token only loopback can connect, but a web page in the operator's browser
    # could still reach it through a name it points at 127.0.0.1 (DNS rebinding): such
    # requests carry that name as Host, so only loopback names are served.
    app = TokenAuth(app, token) if token is not None else _LoopbackHosts(app)
    return _SecurityHeaders(app)  # outermost: a 401 or 421 carries them too


class _SecurityHeaders:
    """Adds SECURITY_HEADERS to every response (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name.encode(), value.encode())
                    for name, value in SECURITY_HEADERS.items()
                    if name.encode() not in present
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


def host_name(header: str) -> str:
    """The name of a Host header, without its port (`[::1]:8080` -> `::1`)."""
    header = header.strip().lower()
    if header.startswith("["):
        inside, _, rest = header[1:].partition("]")
        return inside if rest == "" or (rest[0] == ":" and rest[1:].isdigit()) else header
    return header.rpartition(":")[0] if header.count(":") == 1 else header


class _LoopbackHosts:
    """421 for a request whose Host is not a loopback name (see create_app)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            host = host_name(headers.get(b"host", b"").decode("latin-1"))
            # Exact loopback literals and `localhost` only: `127.0.0.1.evil.example` is a
            # name anyone can point at 127.0.0.1.
            if not is_loopback(host):
                body = b"421: this server answers only to loopback names (127.0.0.1, localhost)\n"
                await send({
                    "type": "http.response.start", "status": 421,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())],
                })  # fmt: skip
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
