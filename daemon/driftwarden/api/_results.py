"""What `Warden` returns beyond the service's own result types: a scan's whole report."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what a scan imports anyway; `import driftwarden.api` need not
    from driftwarden.domain.model import Severity
    from driftwarden.service.messages.notifications import DeliveryReport
    from driftwarden.service.scan.check import CheckResult
    from driftwarden.service.scan.flow import StackScan
    from driftwarden.service.scan.remediate import Remediation


@dataclass(frozen=True)
class ScanReport:
    """What `Warden.scan` did: each stack's checks and the remediations they started, in
    config order, and the delivery of the notifications they queued.

    Iterating over it gives the check results (`for result in warden.scan("demo")`);
    `to_dict()` is `driftwarden scan --json`'s document and `exit_code` its exit code.
    """

    stacks: list[StackScan]
    delivery: DeliveryReport
    fail_on: Severity | None = None

    @property
    def results(self) -> list[CheckResult]:
        """Every check's result, stack by stack (config order), each stack's checks in order."""
        return [result for done in self.stacks for result in done.results]

    @property
    def remediations(self) -> list[Remediation]:
        """The remediations the stacks' policies started after a drift check."""
        return [remediation for done in self.stacks for remediation in done.remediations]

    @property
    def exit_code(self) -> int:
        """SPEC.md's: 1 if a check failed, else 3 if one found differences (rated at least
        `fail_on`, when given), else 0."""
        from driftwarden.service.scan.check import exit_code

        return exit_code(self.results, self.fail_on)

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def to_dict(self) -> dict[str, Any]:
        """`driftwarden scan --json`: `{"results": [...]}`."""
        return {"results": [result.to_dict() for result in self.results]}
