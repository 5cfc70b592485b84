"""`driftwarden trigger` requests, claimed by the daemon as soon as it can run them."""

from __future__ import annotations

from collections.abc import Callable, Collection

from driftwarden.domain.errors import DriftwardenError
from driftwarden.domain.model import Check
from driftwarden.service.logs import logger
from driftwarden.service.runtime import DAEMON_ACTOR, Runtime
from driftwarden.store.models import ScanRequest
from driftwarden.store.requests import claim, pending_requests, record_request_rejected


def requested_checks(request: ScanRequest) -> list[Check] | None:
    """The checks a request asks for (None: the stack's own)."""
    return [Check(c) for c in request.checks] if request.checks else None


def claim_requests(
    runtime: Runtime, claimer: str, running: Callable[[], Collection[str]]
) -> list[ScanRequest]:
    """Claim the pending requests that can run now, oldest first. One for a stack that is
    scanning stays pending (claimed when that scan ends); one for a stack that is not
    configured is claimed and rejected. Store errors are logged: nothing is claimed."""
    to_run = []
    try:
        with runtime.store.write() as session:
            requests = pending_requests(session)
            busy = set(running()) if requests else set()  # (asking may cost a query)
            known = {s.name for s in runtime.config.stacks}
            for request in requests:
                if request.stack in busy:
                    continue
                if claim(session, request.id, claimer):
                    if request.stack in known:
                        to_run.append(request)
                    else:
                        record_request_rejected(
                            session, runtime.store.audit, request,
                            actor=DAEMON_ACTOR, reason="unknown stack",
                        )  # fmt: skip
    except DriftwardenError as exc:
        logger.error("cannot read scan requests", extra={"error": str(exc)})
        return []
    return to_run
