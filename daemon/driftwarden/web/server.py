"""The web server's life: a socket bound up front (a port in use is a clear error, not
a log line), uvicorn serving on a thread of its own, and a stop that lets requests in
flight finish. `serve` runs it in the foreground; `run` beside the daemon loop."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import uvicorn

from driftwarden.config import Config, WebSettings
from driftwarden.domain.errors import UsageError
from driftwarden.service.logs import logger
from driftwarden.service.runtime import Runtime
from driftwarden.service.sources.watch import AuditWatch
from driftwarden.web.app import WebState, create_app
from driftwarden.web.auth import require_credential

# How long a stop waits for requests in flight.
STOP_GRACE_SECONDS = 5.0
# The audit chain is verified when the server starts and this often after, so that
# `driftwarden_audit_verify_ok` always says something recent (a verify only reads).
VERIFY_EVERY_SECONDS = 3600.0


class WebServer:
    """The dashboard on `listen` (else `[web] listen`, else 127.0.0.1:8080), reading
    the store of the runtime that `runtime` opens (read-only), with `running_config`'s
    config when it runs beside the daemon."""

    def __init__(
        self,
        runtime: Callable[[], Runtime],
        web: WebSettings,
        *,
        listen: str | None = None,
        running_config: Callable[[], Config] | None = None,
        loop_heartbeat: Callable[[], float] | None = None,
        watch: AuditWatch | None = None,
    ) -> None:
        settings = web if listen is None else web.model_copy(update={"listen": listen})
        self.host, self.port = settings.address()
        token = settings.token()
        require_credential(self.host, token)
        self._socket = _bind(self.host, self.port)
        # Opened once the address and credential are known good: a refused start says
        # why before it says anything about the store.
        try:
            self.state = WebState(runtime(), running_config, loop_heartbeat, watch)
        except BaseException:
            self._socket.close()
            raise
        self.port = self._socket.getsockname()[1]  # the one picked, for port 0
        self.protected = token is not None
        self.tls = settings.tls_cert_file is not None
        config = uvicorn.Config(
            create_app(self.state, token=token), log_config=None, access_log=False,
            log_level="warning", lifespan="off", server_header=False,
            timeout_graceful_shutdown=int(STOP_GRACE_SECONDS),
            ssl_certfile=settings.tls_cert_file, ssl_keyfile=settings.tls_key_file,
        )  # fmt: skip
        if self.tls:
            try:
                config.load()  # the certificate and key, read now: a bad pair fails the start
            except (OSError, ValueError) as exc:
                self._socket.close()
                raise UsageError(f"[web] TLS certificate or key unusable: {exc}") from None
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)
        self._stopping = threading.Event()
        self._verifier = threading.Thread(target=self._verify, name="web-verify", daemon=True)
        self.failure: BaseException | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by whoever waits on the server
            self.failure = exc

    def _verify(self) -> None:
        while not self._stopping.is_set():
            try:
                self.state.verify()
            except Exception as exc:  # a store that went away: said by /healthz too
                logger.warning("audit verify failed", extra={"error": type(exc).__name__})
            self._stopping.wait(VERIFY_EVERY_SECONDS)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        self._verifier.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if not self._server.started:
            raise UsageError(f"the web server did not start on {self.url}: {self.failure!r}")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stopping.set()
        self._server.should_exit = True
        self._thread.join(STOP_GRACE_SECONDS + 5)
        self._verifier.join(STOP_GRACE_SECONDS)
        self._socket.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="choose another address with --listen or [web] listen",
        ) from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock
