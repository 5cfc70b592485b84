"""driftwarden: drift detection, audit and guarded remediation for Pulumi stacks.

The Python API is one object, `Warden`, and the types its methods return:

    from driftwarden import Warden

    with Warden.open("driftwarden.toml") as warden:
        for result in warden.scan("demo"):
            print(result.stack, result.check, result.status, len(result.changes))

Everything else in the package is private. The names below are imported on first use,
so that `import driftwarden` (and the CLI's `--help`) stays cheap.
"""

from driftwarden.domain.version import __version__

TYPE_CHECKING = False  # not typing's: importing typing would double this import's cost
if TYPE_CHECKING:
    from typing import Any

    from driftwarden.api import ScanReport, Warden
    from driftwarden.config import Config
    from driftwarden.domain.errors import DriftwardenError
    from driftwarden.domain.model import Check, CheckStatus, Severity
    from driftwarden.service.messages.notifications import DeliveryReport
    from driftwarden.service.scan.check import CheckResult
    from driftwarden.service.scan.flow import StackScan
    from driftwarden.service.scan.remediate import Remediation
    from driftwarden.store.audit import VerifyReport
    from driftwarden.store.digest_check import DigestReport

# Public name -> the module that defines it.
_LAZY = {
    "Warden": "driftwarden.api",
    "ScanReport": "driftwarden.api",
    "StackScan": "driftwarden.service.scan.flow",
    "CheckResult": "driftwarden.service.scan.check",
    "Remediation": "driftwarden.service.scan.remediate",
    "DeliveryReport": "driftwarden.service.messages.notifications",
    "VerifyReport": "driftwarden.store.audit",
    "DigestReport": "driftwarden.store.digest_check",
    "Check": "driftwarden.domain.model",
    "CheckStatus": "driftwarden.domain.model",
    "Severity": "driftwarden.domain.model",
    "DriftwardenError": "driftwarden.domain.errors",
    "Config": "driftwarden.config",
}

__all__ = [
    "Check",
    "CheckResult",
    "CheckStatus",
    "Config",
    "DeliveryReport",
    "DigestReport",
    "DriftwardenError",
    "Remediation",
    "ScanReport",
    "Severity",
    "StackScan",
    "VerifyReport",
    "Warden",
    "__version__",
]


def __getattr__(name: str) -> "Any":
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'driftwarden' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
