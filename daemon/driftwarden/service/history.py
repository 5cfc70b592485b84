"""Record what the stacks' own update history says (`pulumi up` by anyone) in the audit
chain: who changed what, when, with what result, even outside driftwarden."""

from __future__ import annotations

import threading

from driftwarden.config import StackConfig
from driftwarden.domain.errors import DriftwardenError
from driftwarden.service.logs import logger
from driftwarden.service.runtime import Runtime
from driftwarden.store.updates import record_updates


def ingest_history(
    runtime: Runtime, stack: StackConfig, cancel: threading.Event | None = None
) -> int:
    """Record the stack's updates not recorded yet; never fails the caller (logs instead).
    In the daemon the read runs isolated, under the stack's timeout and the shutdown."""
    try:
        updates = runtime.stack_engine(stack, cancel).history()
    except DriftwardenError as exc:
        logger.warning("cannot read the stack's history", extra={"stack": stack.name,
                                                                  "error": str(exc)})  # fmt: skip
        return 0
    with runtime.store.write() as session:
        recorded = record_updates(session, runtime.store.audit, stack.name, updates)
    if recorded:
        logger.info("stack updates recorded", extra={"stack": stack.name, "updates": recorded})
    return recorded


def ingest_all_history(runtime: Runtime, cancel: threading.Event) -> None:
    """Every configured stack's history, one stack at a time, until `cancel` is set."""
    for stack in runtime.config.stacks:
        if cancel.is_set():
            return
        ingest_history(runtime, stack, cancel)
