"""What a driftwarden process opens before doing work: state directory, audit store, engine.

Every engine call runs in an engine worker process of its own (engine/isolated.py), for
the CLI as for the daemon: a timeout, a Ctrl-C, a SIGTERM or the death of driftwarden
itself stops the engine's whole process tree, and nothing of it is left behind.

A writer (`Runtime.open`: scan, run, remediate, trigger, notify send, db) creates the state
directory, migrates the store, records the configuration (by hash) when it changed, and
marks operations whose process died as `interrupted`. A reader (`Runtime.open_reader`:
status, history, drift show, audit, notify list) does none of that: it opens the store
read-only and changes nothing, so an auditor with read access can run it.
"""

from __future__ import annotations

import copy
import getpass
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from driftwarden.config import Config, StackConfig
from driftwarden.domain.errors import DriftwardenError
from driftwarden.engine.api import EngineTarget
from driftwarden.engine.bound import IsolatedStackEngine, StackEngine
from driftwarden.engine.locate import find_engine
from driftwarden.engine.plugins import Plugin, install_plugin
from driftwarden.service.logs import logger
from driftwarden.service.statedir import StateDir
from driftwarden.store.audit import load_audit_key, record_config
from driftwarden.store.db import (
    Store,
    default_store_url,
    open_store,
    open_store_read_only,
    require_recorded,
)
from driftwarden.store.operations import lost_runs, recover_interrupted

if TYPE_CHECKING:  # built on first use: readers never start an engine worker
    from driftwarden.engine.isolated import IsolatedEngine

DAEMON_ACTOR = "daemon"
# How far back a lost run may have left an engine lock behind.
LOST_RUN_HORIZON = timedelta(days=7)


def cli_actor() -> str:
    """Who runs the CLI: OS user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def engine_target(stack: StackConfig, state: StateDir) -> EngineTarget:
    return EngineTarget(
        name=stack.name,
        project_dir=stack.project_dir,
        stack=stack.stack,
        backend_url=state.backend_url,
        passphrase_file=state.passphrase_file,
        pulumi_home=state.pulumi_home,
        env=stack.env,
    )


def install_plugins(config: Config, state: StateDir) -> list[tuple[Plugin, bool]]:
    """Install `[[plugins]]` into the engine's PULUMI_HOME, each once; each plugin with
    whether it was installed just now. Locates the engine first (EngineError without one),
    plugins or not."""
    bin_dir, _ = find_engine(config.daemon.pulumi_bin)
    if not config.plugins:
        return []
    state.pulumi_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    done = []
    for entry in config.plugins:
        plugin = Plugin(entry.kind, entry.name, entry.bare_version, entry.path)
        done.append((plugin, install_plugin(bin_dir / "pulumi", state.pulumi_home, plugin)))
    return done


def store_url(config: Config, state: StateDir) -> str:
    return config.daemon.database_url or default_store_url(state.root)


@dataclass
class _EngineSlot:
    """The runtime's engine workers, shared by its pinned views."""

    engine: IsolatedEngine | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Runtime:
    config: Config
    state: StateDir
    store: Store
    actor: str
    # Engine workers started ahead and kept between calls: as many as may run at once.
    engine_workers: int | None = None  # None: [daemon] max_parallel
    _engines: _EngineSlot = field(default_factory=_EngineSlot, repr=False)

    @classmethod
    def open(
        cls, config: Config, *, actor: str | None = None, engine_workers: int | None = None
    ) -> Runtime:
        """With `engine_workers`, that many engine workers start first: their interpreter
        and engine start overlap the opening of the store (the CLI's commands)."""
        engine = None
        if engine_workers:
            from driftwarden.engine.isolated import IsolatedEngine

            engine = IsolatedEngine(config.daemon.pulumi_bin, spares=engine_workers)
            engine.start_ahead()
        try:
            state = StateDir.for_config(config)
            state.ensure()
            store = open_store(store_url(config, state), load_audit_key(state.root))
            runtime = cls(config, state, store, actor or cli_actor(), engine_workers)
            if engine is not None:
                runtime._engines.engine = engine
            runtime._record_startup()
        except BaseException:
            if engine is not None:
                engine.close()
            raise
        return runtime

    @classmethod
    def open_reader(cls, config: Config, *, audit_key: bool = True) -> Runtime:
        """For commands that only read: no directory, key, migration or row is created.
        `audit_key` False: the audit key is not needed (an auditor with the public key)."""
        state = StateDir.for_config(config)
        url = store_url(config, state)
        require_recorded(url)
        key = load_audit_key(state.root, create=False) if audit_key else None
        store = open_store_read_only(url, key)
        return cls(config, state, store, cli_actor())

    def pinned(self, config: Config | None = None) -> Runtime:
        """This runtime with its config fixed (`config`, or the current one): a scan keeps
        the config it started with when a reload swaps the running one meanwhile. Shares
        the store and the engine workers."""
        view = copy.copy(self)  # shares `_engines`: the engine workers, started once
        view.config = config or self.config
        return view

    @property
    def isolated_engine(self) -> IsolatedEngine:
        """Built on first use (readers never start one), once for every view."""
        from driftwarden.engine.isolated import IsolatedEngine

        with self._engines.lock:
            if self._engines.engine is None:
                daemon = self.config.daemon
                spares = self.engine_workers or daemon.max_parallel
                self._engines.engine = IsolatedEngine(daemon.pulumi_bin, spares=spares)
            return self._engines.engine

    @property
    def lock_dir(self) -> Path:
        return self.state.root / "locks"

    def stack_engine(self, stack: StackConfig, cancel: threading.Event | None) -> StackEngine:
        """The engine calls of `stack`, each in an engine worker under the stack's
        timeout and `cancel`."""
        target = engine_target(stack, self.state)
        timeout = self.config.timeout_of(stack)
        return IsolatedStackEngine(self.isolated_engine, target, timeout, cancel)

    def clear_stale_engine_locks(self, stack: StackConfig) -> None:
        """Before an engine run, under the stack's lock: remove the file-backend locks that
        lost runs of ours left (a process killed mid-update leaves Pulumi's lock, and every
        later update would fail `locked`)."""
        from driftwarden.engine.locks import LostRun, engine_locks, remove_stale_locks

        target = engine_target(stack, self.state)
        if not engine_locks(target):
            return  # the usual case: no store read before the run
        since = datetime.now(UTC) - LOST_RUN_HORIZON
        with self.store.read() as session:
            lost = [LostRun(*run) for run in lost_runs(session, stack.name, since)]
        for path in remove_stale_locks(target, lost):
            logger.warning("stale engine lock removed",
                           extra={"stack": stack.name, "lock": path.name})  # fmt: skip

    def retire_idle_workers(self) -> None:
        if self._engines.engine is not None:  # built once an engine call was made
            self._engines.engine.retire_idle()

    def close_engines(self) -> None:
        """End the engine workers started ahead (on the way out)."""
        if self._engines.engine is not None:
            self._engines.engine.close()

    @property
    def plan_dir(self) -> Path:
        """Update plans between a remediation's preview and its apply (0700; each plan is
        0600 and deleted once the remediation ends)."""
        path = self.state.root / "plans"
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def install_plugins(self) -> list[tuple[Plugin, bool]]:
        """Install `[[plugins]]` (see `install_plugins`). Locates the engine first: without
        one, this fails before anything is recorded."""
        return install_plugins(self.config, self.state)

    def ensure_plugins(self) -> None:
        """`install_plugins` for the long-running processes (daemon, worker): logged, and a
        failure only logged (the stacks that need a plugin fail, and say why)."""
        if not self.config.plugins:
            return  # nor load the engine: these processes run it only in their workers
        try:
            for plugin, now in self.install_plugins():
                if now:
                    logger.info("plugin installed", extra={"plugin": plugin.label})
        except DriftwardenError as exc:
            logger.error("plugin installation failed", extra={"error": str(exc)})

    def _record_startup(self) -> None:
        self.record_config()
        with self.store.write() as session:
            recover_interrupted(session, self.store.audit, self.actor)

    def record_config(self) -> None:
        """Audit `config.loaded` with the file's hash, when it differs from the last one."""
        with self.store.write() as session:
            record_config(session, self.store.audit, actor=self.actor,
                          path=str(self.config.source), sha256=self.config.digest)  # fmt: skip
