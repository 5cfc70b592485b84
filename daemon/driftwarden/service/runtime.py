"""What a driftwarden process opens before doing work: state directory, audit store, engine.

Opening the store migrates it, records the configuration (by hash) when it changed, and
marks operations whose process died as `interrupted`.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass, field
from functools import cached_property

from sqlmodel import col, select

from driftwarden.config import Config
from driftwarden.engine import Engine
from driftwarden.statedir import StateDir
from driftwarden.store.audit import load_audit_key
from driftwarden.store.db import Store, default_store_url, open_store
from driftwarden.store.models import AuditEvent
from driftwarden.store.operations import recover_interrupted

DAEMON_ACTOR = "daemon"


def cli_actor() -> str:
    """Who runs the CLI: OS user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def store_url(config: Config, state: StateDir) -> str:
    return config.daemon.database_url or default_store_url(state.root)


@dataclass
class Runtime:
    config: Config
    state: StateDir
    store: Store
    actor: str
    _engine: Engine | None = field(default=None, repr=False)

    @classmethod
    def open(cls, config: Config, *, actor: str | None = None) -> Runtime:
        state = StateDir.for_config(config)
        state.ensure()
        store = open_store(store_url(config, state), load_audit_key(state.root))
        runtime = cls(config, state, store, actor or cli_actor())
        runtime._record_startup()
        return runtime

    @cached_property
    def engine(self) -> Engine:
        return self._engine or Engine(self.config.daemon.pulumi_bin)

    def _record_startup(self) -> None:
        with self.store.write() as session:
            last = session.exec(
                select(AuditEvent)
                .where(AuditEvent.action == "config.loaded")
                .order_by(col(AuditEvent.seq).desc())
                .limit(1)
            ).first()
            source = str(self.config.source)
            if last is None or last.details != {"path": source, "sha256": self.config.digest}:
                self.store.audit.append(
                    session,
                    actor=self.actor,
                    action="config.loaded",
                    details={"path": source, "sha256": self.config.digest},
                )
            recover_interrupted(session, self.store.audit, self.actor)
