"""`Warden`: one object for everything the CLI does, for scripts and notebooks.

A Warden is opened from a config (a path, a loaded `Config`, or None for the CLI's own
discovery) and owns what the commands open: the audit store and the engine workers.
`close()` (or leaving its `with` block) closes both. It never changes the process's
environment, never configures logging, and never hands out a database session: each
method runs its own transactions and returns plain results — the dataclasses and
dictionaries `driftwarden … --json` prints.

The store is opened by the first method that needs it, after that method has checked
its arguments (an unknown stack name changes nothing), and kept until `close()`.
`Warden.open` is a writer, as `scan` is: the first call creates the state directory,
migrates the store, and records the config (audited once per change of the file).
`Warden.open_reader` only reads, as `status` does: it opens the store read-only and
creates, migrates or writes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TextIO, overload

from driftwarden.api._results import ScanReport
from driftwarden.config import Config, find_config, load_config
from driftwarden.domain.errors import DriftwardenError, UsageError
from driftwarden.domain.model import (
    Check,
    NotificationStatus,
    RemediationMode,
    Severity,
    Trigger,
)
from driftwarden.service.read.views import (
    audit_event_view,
    findings_view,
    history_view,
    notifications_view,
    sources_view,
    state_changes_view,
    status_view,
    trust_view,
)
from driftwarden.service.runtime import Runtime
from driftwarden.store.audit import VerifyReport
from driftwarden.store.db import Store
from driftwarden.store.digest_check import DigestReport

if TYPE_CHECKING:  # the readers' commands need none of these (nor their imports' time)
    from driftwarden.service.messages.notifications import DeliveryReport
    from driftwarden.service.scan.remediate import Remediation
    from driftwarden.system.signing import PublicKey

ConfigSource = str | os.PathLike[str] | Config | None
StackProgress = Callable[[str, Check, str], None]  # stack name, check, what the engine does
ExportFormat = Literal["ocsf", "native"]
ReportFormat = Literal["html", "md", "json"]
OutboxStatus = Literal["pending", "sent", "failed"]


def _load(config: ConfigSource) -> Config:
    """The config the CLI would use: `config` itself, the file it names, or (None) the
    one found from $DRIFTWARDEN_CONFIG, ./driftwarden.toml, /etc/driftwarden/…."""
    if isinstance(config, Config):
        return config
    return load_config(find_config(None if config is None else Path(config)))


def _checks(checks: Sequence[Check | str] | None) -> list[Check] | None:
    if checks is None:
        return None
    try:
        return [Check(check) for check in checks]
    except ValueError:
        raise UsageError(f"checks are drift or code, not {list(checks)!r}") from None


def _names(stacks: str | Sequence[str] | None) -> list[str]:
    if stacks is None:
        return []
    return [stacks] if isinstance(stacks, str) else list(stacks)


class Warden:
    """driftwarden's front door. Open it with `Warden.open(...)` (read and write, what
    `scan` and `remediate` need) or `Warden.open_reader(...)` (read-only, what `status`,
    `history` and `audit verify` need), preferably in a `with` block:

        with Warden.open("driftwarden.toml") as warden:
            report = warden.scan("demo")

    Not thread-safe: use one Warden per thread (a scan runs its stacks in parallel itself).
    """

    def __init__(self, config: Config, *, read_only: bool, actor: str | None = None) -> None:
        """Use `Warden.open` or `Warden.open_reader`."""
        self._config = config
        self._read_only = read_only
        self._actor = actor
        self._runtime: Runtime | None = None
        self._runtime_has_key = False
        self._closed = False

    # -- opening and closing ------------------------------------------------------------

    @classmethod
    def open(cls, config: ConfigSource = None, *, actor: str | None = None) -> Self:
        """A Warden that reads and writes. `config`: a path, a loaded `Config`, or None
        for the CLI's discovery. `actor` is who the audit trail names (default
        `user@host`). Reads and validates the config now (ConfigError); opens the store
        on first use."""
        return cls(_load(config), read_only=False, actor=actor)

    @classmethod
    def open_reader(cls, config: ConfigSource = None, *, actor: str | None = None) -> Self:
        """A Warden that only reads: the store is opened read-only, and nothing is
        created, migrated or written (an auditor with read access can use it). Methods
        that write (`scan`, `remediate`, `trigger`, `deliver`, `notify_test`, `digest`,
        `prune`, `upgrade`, `sign_digest`, `forward`) refuse."""
        return cls(_load(config), read_only=True, actor=actor)

    def close(self) -> None:
        """End the engine workers and close the store. Idempotent; a closed Warden
        refuses further calls."""
        self._closed = True
        self._drop_runtime()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self._read_only else "read-write"
        state = ", closed" if self._closed else ""
        return f"<Warden {self._config.source or '(no file)'} ({mode}{state})>"

    @property
    def config(self) -> Config:
        """The configuration in use (after `reload()`, the new one)."""
        return self._config

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def stacks(self) -> list[str]:
        """The configured stacks' names, in config order."""
        return [stack.name for stack in self._config.stacks]

    def reload(self) -> Config:
        """Read the config file this Warden was opened from again (ConfigError if it
        became invalid: the old config stays in use). The store and engine workers are
        closed and reopened on next use, with the new settings."""
        self._require_open()
        if self._config.source is None:
            raise UsageError("this Warden's config was not read from a file: nothing to reload")
        config = load_config(self._config.source)
        self._drop_runtime()
        self._config = config
        return config

    # -- checks and remediation (writers) -----------------------------------------------

    def scan(
        self,
        stacks: str | Sequence[str] | None = None,
        *,
        checks: Sequence[Check | str] | None = None,
        parallel: int | None = None,
        wait: bool = True,
        fail_on: Severity | str | None = None,
        progress: StackProgress | None = None,
    ) -> ScanReport:
        """Run checks now, as `driftwarden scan` does: the named stacks (default: all),
        `checks` instead of each stack's own, up to `parallel` stacks at once (default
        `[daemon] max_parallel`). Each check is recorded; a stack whose policy says so is
        remediated after a drift check. `wait=False`: a stack another process is scanning
        fails at once instead of waiting. Then the notifications the scan queued are
        delivered (what cannot go now stays queued: `ScanReport.delivery` says why).
        `fail_on` only changes `ScanReport.exit_code`. `progress(stack, check, message)` is
        called as the engine works."""
        from driftwarden.service.messages.notifications import deliver_due
        from driftwarden.service.preflight import require_usable_targets
        from driftwarden.service.scan.check import select_stacks
        from driftwarden.service.scan.flow import scan_stacks

        self._require_writer("scan")
        config = self._config
        wanted = select_stacks(config, _names(stacks))
        if not wanted:
            raise UsageError(
                f"{config.source}: no stacks configured", hint="add a [[stacks]] entry"
            )
        require_usable_targets(config)
        chosen = _checks(checks)
        try:
            severity = None if fail_on is None else Severity(fail_on)
        except ValueError:
            known = ", ".join(severity.value for severity in Severity)
            raise UsageError(f"fail_on is one of {known}, not {fail_on!r}") from None
        if parallel is not None and parallel < 1:
            raise UsageError(f"parallel must be at least 1, not {parallel}")
        workers = parallel or config.daemon.max_parallel
        runtime = self._writer(engine_workers=min(workers, len(wanted)))
        runtime.install_plugins()  # fails fast, before recording anything, without an engine
        if progress is None:
            scans = scan_stacks(runtime, wanted, chosen, wait=wait, parallel=workers)
        else:
            report = progress
            scans = scan_stacks(
                runtime, wanted, chosen, wait=wait, parallel=workers,
                progress=lambda stack, check, message: report(stack.name, check, message),
            )  # fmt: skip
        # Deliver what this scan queued; what cannot go now stays queued for the next run.
        delivery = deliver_due(runtime.store, config, runtime.actor)
        return ScanReport(scans, delivery, severity)

    def remediate(
        self,
        stack: str,
        *,
        mode: RemediationMode | Literal["refresh", "up"],
        dry_run: bool = False,
        confirm: Callable[[Remediation], bool] | None = None,
    ) -> Remediation:
        """`driftwarden remediate`: plan once (`refresh`: accept what is live; `up`:
        enforce the program), judge the plan by the stack's guardrails and, unless
        `dry_run`, apply exactly it and verify with a drift check. Calling this approves
        the remediation (as `--yes` does, with this Warden's actor as the approver);
        `confirm(planned)` is asked first when given, and False declines. Then the
        notifications it queued are delivered."""
        from driftwarden.service.messages.notifications import deliver_due
        from driftwarden.service.preflight import require_usable_targets
        from driftwarden.service.scan.remediate import remediate

        self._require_writer("remediate")
        config = self._config
        target = config.stack(stack)
        try:
            how = RemediationMode(mode)
        except ValueError:
            raise UsageError(f"mode must be refresh or up, not {mode!r}") from None
        require_usable_targets(config)
        runtime = self._writer(engine_workers=1)
        runtime.install_plugins()  # fails fast without an engine
        result = remediate(runtime, target, how, actor=runtime.actor, trigger=Trigger.CLI,
                           approved=True, dry_run=dry_run, confirm=confirm)  # fmt: skip
        deliver_due(runtime.store, config, runtime.actor)
        return result

    def trigger(
        self, stacks: str | Sequence[str], *, checks: Sequence[Check | str] | None = None
    ) -> list[dict[str, Any]]:
        """`driftwarden trigger`: ask the running daemon to scan these stacks now; one
        request each: `{"request_id", "stack", "requested_at"}`."""
        from driftwarden.store.requests import request_scan

        self._require_writer("trigger")
        targets = [self._config.stack(name) for name in dict.fromkeys(_names(stacks))]
        chosen = _checks(checks)
        wanted = None if chosen is None else [check.value for check in chosen]
        runtime = self._writer()
        with runtime.store.write() as session:
            requests = [
                request_scan(session, runtime.store.audit, stack=target.name, checks=wanted,
                             actor=runtime.actor)
                for target in targets
            ]  # fmt: skip
        return [
            {"request_id": r.id, "stack": r.stack, "requested_at": r.requested_at.isoformat()}
            for r in requests
        ]

    def deliver(self) -> DeliveryReport:
        """`driftwarden notify send`: deliver every due message in the outbox now."""
        from driftwarden.service.messages.notifications import deliver_due

        self._require_writer("deliver")
        runtime = self._writer()
        return deliver_due(runtime.store, self._config, runtime.actor)

    def notify_test(self) -> list[dict[str, Any]]:
        """`driftwarden notify test`: send a test message to every configured target now
        (not through the outbox) and audit each attempt (`notification.test`). One
        `{"target", "ok", "error"}` per target: a target that fails does not raise."""
        from driftwarden.notify.deliver import Delivery, deliver
        from driftwarden.notify.render import render_test
        from driftwarden.service.messages.notifications import target_config_files, target_urls
        from driftwarden.store.outbox import record_test_message

        self._require_writer("notify_test")
        config = self._config
        if not config.targets:
            raise DriftwardenError(
                f"{config.source}: no notification targets", hint="add a [[targets]] entry"
            )
        runtime = self._writer()
        results: list[dict[str, Any]] = []
        for target in config.targets:
            try:
                delivery = deliver(
                    target_urls(target), render_test(target.name),
                    config_files=target_config_files(target),
                )  # fmt: skip
            except DriftwardenError as exc:
                delivery = Delivery(False, str(exc))
            results.append({"target": target.name, "ok": delivery.ok, "error": delivery.error})
            with runtime.store.write() as session:
                record_test_message(
                    session, runtime.store.audit, actor=runtime.actor, target=target.name,
                    sent=delivery.ok, error=delivery.error,
                )  # fmt: skip
        return results

    def digest(self, targets: str | Sequence[str] | None = None) -> list[dict[str, Any]]:
        """`driftwarden notify digest`: queue the digest of everything still open for
        these targets (default: every target with a digest schedule) and deliver it now,
        as the daemon does on schedule. One `{"target", "status" ("queued", …, or
        "nothing_open": none sent), "stacks", "findings", "notification_id", "error"}`
        per target; `error` is why it was not delivered (it stays queued)."""
        from driftwarden.service.messages.digest import queue_digest
        from driftwarden.service.messages.notifications import deliver_due

        self._require_writer("digest")
        config = self._config
        names = _names(targets)
        if names:
            chosen = []
            for name in dict.fromkeys(names):
                target = config.target(name)
                if target is None:
                    known = ", ".join(t.name for t in config.targets) or "none configured"
                    raise UsageError(f"no target named {name!r}", hint=f"known targets: {known}")
                chosen.append(target)
        else:
            chosen = [target for target in config.targets if target.digest is not None]
            if not chosen:
                raise UsageError(
                    f"{config.source}: no target has a digest schedule",
                    hint='set digest = "daily at 09:00" on a [[targets]] entry, or use '
                    "--target NAME",
                )
        runtime = self._writer()
        results = [queue_digest(runtime.store, config, target) for target in chosen]
        report = deliver_due(runtime.store, config, runtime.actor)
        return [
            {"target": r.target, "status": r.status, "stacks": r.stacks, "findings": r.findings,
             "notification_id": r.notification_id, "error": report.errors.get(r.target)}
            for r in results
        ]  # fmt: skip

    def prune(self, older_than: timedelta) -> dict[str, Any]:
        """`driftwarden db prune`: delete operations (and their changes) started more
        than `older_than` ago — never audit events, running operations, or operations an
        open finding refers to — and audit it. `{"cutoff", "operations",
        "resource_changes", "property_changes"}`."""
        from driftwarden.store.prune import prune, record_prune

        self._require_writer("prune")
        if older_than <= timedelta(0):
            raise UsageError(f"older_than must be positive, not {older_than}")
        runtime = self._writer()
        cutoff = datetime.now(UTC) - older_than
        with runtime.store.write() as session:
            result = prune(session, older_than=cutoff)
            record_prune(session, runtime.store.audit, actor=runtime.actor, older_than=cutoff,
                         result=result)  # fmt: skip
        return {"cutoff": cutoff.isoformat(), **result.__dict__}

    def upgrade(self) -> dict[str, str]:
        """`driftwarden db upgrade`: apply pending schema migrations (opening the store
        as a writer already does): `{"revision", "database_url"}`, the URL without its
        password."""
        from driftwarden.store.db import redact_db_url, upgrade

        self._require_writer("upgrade")
        store = self._writer().store
        return {"revision": upgrade(store), "database_url": redact_db_url(store.url)}

    # -- the audit chain's trust: signed digests, forwarding (writers) --------------------

    def sign_digest(self) -> dict[str, Any] | None:
        """`driftwarden audit digest`: sign a digest of the events since the last one now
        (the daemon does it every `[audit] digest_every` and when it stops). The digest's
        payload (`number`, `first_seq`, `last_seq`, `key`, …) and the chain's new `head`
        ("SEQ:HASH"); None when no event came since the last digest. UsageError without
        a signing key (`Warden.keygen` makes one)."""
        from driftwarden.service.trust.digests import sign_digest, signing_keys

        self._require_writer("sign_digest")
        runtime = self._writer()
        if signing_keys(runtime.config, runtime.state) is None:
            raise UsageError(
                "no audit signing key",
                hint="generate one with `driftwarden audit keygen`, or set [audit] "
                "signing_key_file",
            )
        sealed = sign_digest(runtime, force=True)
        return None if sealed is None else {**sealed.payload, "head": sealed.head}

    def forward(self, *, timeout: timedelta | float = 60.0) -> list[dict[str, Any]]:
        """`driftwarden audit forward`: send every audit event not yet forwarded to each
        `[[audit.forward]]` destination, retrying until each has taken them or `timeout`
        (seconds, or a timedelta) passed. One `{"name", "seq", "head", "behind",
        "failures", "last_error"}` per destination: `behind` > 0 if it is not there yet."""
        import threading

        from driftwarden.service.trust.forward import Forwarder

        self._require_writer("forward")
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        if not seconds > 0:
            raise UsageError(f"timeout must be positive, not {timeout}")
        if not self._config.audit.forward:
            raise UsageError("no [[audit.forward]] destination is configured")
        runtime = self._writer()
        head = runtime.store.audit.head(runtime.store)[0]
        reached = Forwarder(runtime, threading.Event()).drain(seconds)
        return [
            {"name": name, "seq": c.seq, "head": head, "behind": head - c.seq,
             "failures": c.failures, "last_error": c.last_error}
            for name, c in reached.items()
        ]  # fmt: skip

    @staticmethod
    def keygen(
        out: str | os.PathLike[str] | None = None,
        *,
        config: ConfigSource = None,
        force: bool = False,
    ) -> dict[str, str]:
        """`driftwarden audit keygen`: generate the Ed25519 key pair that signs the audit
        digests, without a store: the private key (0600) at `out`, by default where the
        daemon looks for it (`config` is read for that, found as `Warden.open` finds it,
        only when `out` is None), and its public key beside it (`.pub`). Never over an
        existing key unless `force`. `{"private_key", "public_key", "fingerprint"}`."""
        from driftwarden.service.statedir import StateDir
        from driftwarden.service.trust.digests import signing_key_path
        from driftwarden.system.signing import PUBLIC_SUFFIX, generate_key_pair

        if out is None:
            loaded = _load(config)
            state = StateDir.for_config(loaded)
            state.ensure()
            path = signing_key_path(loaded, state)
        else:
            path = Path(out)
        key = generate_key_pair(path, force=force)
        public = path.with_name(path.name + PUBLIC_SUFFIX)
        return {"private_key": str(path), "public_key": str(public),
                "fingerprint": key.fingerprint}  # fmt: skip

    # -- reading ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """`driftwarden status --json`: `{"stacks": [one row per stack: state, open
        findings, last and next scan, …], "audit_sources": […] (when configured),
        "audit": {head, last signed digest, forwarding}}`."""
        store = self._reader()
        rows = status_view(self._config, store)
        sources = sources_view(self._config, store)
        trust = trust_view(self._config, store)
        return {"stacks": rows, **({"audit_sources": sources} if sources else {}),
                "audit": trust}  # fmt: skip

    def history(self, stack: str | None = None, *, limit: int = 50) -> list[dict[str, Any]]:
        """`driftwarden history --json`'s `operations`: checks and remediation steps,
        newest first."""
        if stack is not None:
            self._config.stack(stack)  # a clear error for an unknown name
        return history_view(self._reader(), stack=stack, limit=limit)

    def state_changes(self, stack: str | None = None, *, limit: int = 200) -> list[dict[str, Any]]:
        """`driftwarden history --json`'s `state_changes`: what each change of a stack's
        state (update, refresh, import, edit) wrote, property by property, newest first."""
        if stack is not None:
            self._config.stack(stack)
        return state_changes_view(self._reader(), stack, limit=limit)

    def findings(self, stack: str) -> list[dict[str, Any]]:
        """`driftwarden drift show NAME --json`'s `findings`: the stack's open findings,
        property by property, the most severe first."""
        self._config.stack(stack)
        return findings_view(self._reader(), stack)

    def notifications(
        self, status: NotificationStatus | OutboxStatus | None = None, *, limit: int = 50
    ) -> list[dict[str, Any]]:
        """`driftwarden notify list --json`'s `notifications`: the outbox's queued
        (`pending`), `sent` and `failed` messages (only `status` ones, when given),
        newest first."""
        try:
            wanted = None if status is None else NotificationStatus(status)
        except ValueError:
            known = ", ".join(state.value for state in NotificationStatus)
            raise UsageError(f"status is one of {known}, not {status!r}") from None
        if limit < 1:
            raise UsageError(f"limit must be at least 1, not {limit}")
        return notifications_view(
            self._reader(), status=None if wanted is None else wanted.value, limit=limit
        )

    def audit_log(
        self,
        *,
        stack: str | None = None,
        since: datetime | timedelta | None = None,
        actor: str | None = None,
        limit: int = 50,
        page: int = 1,
    ) -> list[dict[str, Any]]:
        """`driftwarden audit log --json`'s `events`: one timeline, newest first, `limit`
        per page. `since`: a time (naive: UTC) or an age; `actor`: part of the actor."""
        from driftwarden.store.queries import audit_log

        if stack is not None:
            self._config.stack(stack)
        if limit < 1 or page < 1:
            raise UsageError("limit and page start at 1")
        cutoff = datetime.now(UTC) - since if isinstance(since, timedelta) else since
        if cutoff is not None and cutoff.tzinfo is None:
            cutoff = cutoff.replace(tzinfo=UTC)
        store = self._reader()
        with store.read() as session:
            events = audit_log(session, stack=stack, since=cutoff, actor=actor, limit=limit,
                               offset=(page - 1) * limit)  # fmt: skip
            return [audit_event_view(event) for event in events]

    @overload
    def verify(
        self, *, expect_head: tuple[int, str] | None = None, public_keys: None = None
    ) -> VerifyReport: ...

    @overload
    def verify(
        self,
        *,
        expect_head: tuple[int, str] | None = None,
        public_keys: Sequence[str | os.PathLike[str]],
    ) -> DigestReport: ...

    def verify(
        self,
        *,
        expect_head: tuple[int, str] | None = None,
        public_keys: Sequence[str | os.PathLike[str]] | None = None,
    ) -> VerifyReport | DigestReport:
        """`driftwarden audit verify`: recompute every link of the chain with the audit
        key (VerifyReport), or, with `public_keys`, check the signed digests without it
        (DigestReport). `expect_head` (seq, hash), recorded earlier, detects a cut-off
        tail. A store that cannot be read raises StoreError: it is not verified."""
        if public_keys:
            from driftwarden.store.digest_check import verify_digests
            from driftwarden.store.digests import store_events

            keys = _public_keys(public_keys)
            store = self._reader(audit_key=False)
            return verify_digests(store_events(store), keys, expect_head=expect_head)
        store = self._reader()
        return store.audit.verify(store, expect_head=expect_head)

    @staticmethod
    def verify_export(
        export: str | os.PathLike[str] | TextIO,
        public_keys: Sequence[str | os.PathLike[str]],
        *,
        expect_head: tuple[int, str] | None = None,
    ) -> DigestReport:
        """`driftwarden audit verify --public-key … --export FILE`: check a native export
        (a path, or an open text stream) with the signers' public keys, without any
        config or database."""
        from driftwarden.store.digest_check import read_native_export, verify_digests

        keys = _public_keys(public_keys)
        if not isinstance(export, (str, os.PathLike)):
            return verify_digests(read_native_export(export), keys, expect_head=expect_head)
        try:
            with Path(export).open(encoding="utf-8") as handle:
                return verify_digests(read_native_export(handle), keys, expect_head=expect_head)
        except OSError as exc:
            raise UsageError(f"cannot read the export {export}: {exc.strerror}") from None

    def export(self, out: TextIO, *, format: ExportFormat = "ocsf") -> int:
        """`driftwarden audit export`: write every audit event, digests included, one
        JSON object per line in seq order, to `out`; returns how many. `ocsf`: OCSF API
        Activity records; `native`: the events as the chain hashes them."""
        from driftwarden.store.export import export_events

        if format not in ("ocsf", "native"):
            raise UsageError(f"format must be ocsf or native, not {format!r}")
        return export_events(self._reader(audit_key=False), out, format)

    def report(
        self, stacks: str | Sequence[str] | None = None, *, format: ReportFormat = "html"
    ) -> str:
        """`driftwarden report`: the named stacks' (default: all) drift as one standalone
        document — summary, every open finding, the audit chain's verified head — as
        HTML (inline CSS), Markdown or JSON text."""
        from driftwarden.service.read.report import ReportFormat as Form
        from driftwarden.service.read.report import render, report_data

        try:
            form = Form(format)
        except ValueError:
            raise UsageError(f"format must be html, md or json, not {format!r}") from None
        return render(report_data(self._reading(), _names(stacks)), form)

    # -- the runtime behind it ------------------------------------------------------------

    def _require_open(self) -> None:
        if self._closed:
            raise UsageError("this Warden is closed", hint="open a new one")

    def _require_writer(self, what: str) -> None:
        self._require_open()
        if self._read_only:
            raise UsageError(
                f"{what} writes to the audit store, and this Warden is read-only",
                hint="use Warden.open(...) instead of Warden.open_reader(...)",
            )

    def _writer(self, *, engine_workers: int | None = None) -> Runtime:
        """The read-write runtime, opened now if it is not yet (with `engine_workers`
        engine workers started ahead, overlapping the store's opening)."""
        if self._runtime is None:
            self._runtime = Runtime.open(
                self._config, actor=self._actor, engine_workers=engine_workers
            )
            self._runtime_has_key = True
        self._runtime.retire_idle_workers()
        return self._runtime

    def _reading(self, *, audit_key: bool = True) -> Runtime:
        """The runtime to read through: a writer's, or one opened read-only (with the
        audit key unless `audit_key` is False: what an auditor without it may run)."""
        self._require_open()
        if not self._read_only:
            return self._writer()
        if self._runtime is not None and audit_key and not self._runtime_has_key:
            self._drop_runtime()  # opened without the key; this call needs it
        if self._runtime is None:
            runtime = Runtime.open_reader(self._config, audit_key=audit_key)
            if self._actor is not None:
                runtime.actor = self._actor
            self._runtime, self._runtime_has_key = runtime, audit_key
        return self._runtime

    def _reader(self, *, audit_key: bool = True) -> Store:
        """The store to read from (see `_reading`)."""
        return self._reading(audit_key=audit_key).store

    def _drop_runtime(self) -> None:
        runtime, self._runtime = self._runtime, None
        if runtime is None:
            return
        try:
            runtime.close_engines()
        finally:
            runtime.store.close()


def _public_keys(paths: Sequence[str | os.PathLike[str]]) -> list[PublicKey]:
    from driftwarden.system.signing import load_public_key

    return [load_public_key(Path(path)) for path in paths]
