"""Record what the stacks' own update history says (`pulumi up` by anyone) in the audit
chain: who changed what, when, with what result, even outside driftwarden."""

from __future__ import annotations

import threading

from driftwarden.config import StackConfig
from driftwarden.domain.errors import DriftwardenError
from driftwarden.engine.api import history_stamp
from driftwarden.service.logs import logger
from driftwarden.service.runtime import Runtime, engine_target
from driftwarden.store.updates import (
    ingested_history_stamp,
    record_history_stamp,
    record_updates,
)


def ingest_history(
    runtime: Runtime, stack: StackConfig, cancel: threading.Event | None = None
) -> int:
    """Record the stack's updates not recorded yet; never fails the caller (logs instead).
    In the daemon the read runs isolated, under the stack's timeout and the shutdown. A
    history unchanged since it was last ingested into this store (a file backend says so
    without the engine) is not read again."""
    stamp = history_stamp(engine_target(stack, runtime.state))  # before: a later update shows
    if stamp is not None:
        with runtime.store.read() as session:
            if ingested_history_stamp(session, stack.name) == stamp:
                return 0
    try:
        updates = runtime.stack_engine(stack, cancel).history()
    except DriftwardenError as exc:
        logger.warning("cannot read the stack's history", extra={"stack": stack.name,
                                                                  "error": str(exc)})  # fmt: skip
        return 0
    with runtime.store.write() as session:
        recorded = record_updates(session, runtime.store.audit, stack.name, updates)
        if stamp is not None:
            record_history_stamp(session, stack.name, stamp)
    if recorded:
        logger.info("stack updates recorded", extra={"stack": stack.name, "updates": recorded})
    return recorded


def ingest_all_history(runtime: Runtime, cancel: threading.Event) -> None:
    """Every configured stack's history, one stack at a time, until `cancel` is set."""
    from driftwarden.service.scan.state_audit import audit_state

    for stack in runtime.config.stacks:
        if cancel.is_set():
            return
        ingest_history(runtime, stack, cancel)
        audit_state(runtime, stack, cancel)
