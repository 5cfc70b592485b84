"""Signing the audit chain: which key signs (config, systemd credential, state
directory), a digest now, and the daemon's schedule of them (every `[audit]
digest_every`, and at shutdown). Each digest's new head goes to the log (the journal
under systemd) and, as an event of the chain, to every forwarder: the tail cannot be cut
unseen."""

from __future__ import annotations

import threading
from pathlib import Path

from driftwarden.config import Config
from driftwarden.service.logs import logger
from driftwarden.service.runtime import Runtime
from driftwarden.service.statedir import StateDir
from driftwarden.store.digests import Sealed, append_digest
from driftwarden.system.credentials import credential
from driftwarden.system.signing import SIGNING_KEY_NAME, SigningKey, load_signing_key


def signing_key_path(config: Config, state: StateDir) -> Path:
    """Where the signing key is: `[audit] signing_key_file`, the systemd credential, or
    the state directory (where `audit keygen` writes it by default)."""
    if config.audit.signing_key_file is not None:
        return config.audit.signing_key_file
    return credential(SIGNING_KEY_NAME) or state.root / SIGNING_KEY_NAME


def signing_keys(config: Config, state: StateDir) -> tuple[SigningKey, SigningKey | None] | None:
    """The signing key and, during a rotation, the previous one; None when there is no
    key (no digests are signed)."""
    path = signing_key_path(config, state)
    if config.audit.signing_key_file is None and not path.exists():
        return None
    previous = config.audit.previous_signing_key_file
    return load_signing_key(path), load_signing_key(previous) if previous else None


def sign_digest(runtime: Runtime, *, force: bool = False) -> Sealed | None:
    """Append a digest of the events since the last one (None: no key, or nothing new)."""
    keys = signing_keys(runtime.config, runtime.state)
    if keys is None:
        return None
    key, previous = keys
    with runtime.store.write() as session:
        sealed = append_digest(session, runtime.store.audit, key, previous_key=previous,
                               force=force)  # fmt: skip
    if sealed is not None:
        payload = sealed.payload
        logger.info(
            f"audit digest {payload['number']} signed: events {payload['first_seq']}.."
            f"{payload['last_seq']}; head {sealed.head}",
            extra={"digest": payload["number"], "head": sealed.head, "key": payload["key"]},
        )
    return sealed


class DigestSchedule:
    """The digests of a daemon (or of the elected scheduler of distributed workers): one
    every `digest_every` while it runs, one when it stops."""

    def __init__(self, runtime: Runtime, stopping: threading.Event) -> None:
        self._runtime = runtime
        self._stopping = stopping
        self._stop = threading.Event()  # this schedule only (a scheduler that resigns)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if signing_keys(self._runtime.config, self._runtime.state) is None:
            logger.warning("no audit signing key: no digests are signed (`driftwarden audit "
                           "keygen` makes one)")  # fmt: skip
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audit-digests", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        waited = 0.0
        while not (self._stopping.wait(1.0) or self._stop.is_set()):
            waited += 1.0
            if waited >= self._runtime.config.audit.digest_every:  # a reload may change it
                waited = 0.0
                self.sign_once()

    def sign_once(self) -> None:
        try:
            sign_digest(self._runtime)
        except Exception:  # a failed digest is logged and tried at the next one
            logger.exception("audit digest failed")

    def close(self) -> None:
        """After the scans have ended: the last digest, of everything up to now."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.sign_once()
