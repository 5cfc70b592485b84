"""driftwarden's Python API: `Warden` (see _warden.py) and what its methods return.

Import it from the package itself (`from driftwarden import Warden`); the modules in
here are private.
"""

from driftwarden.api._results import ScanReport
from driftwarden.api._warden import Warden

__all__ = ["ScanReport", "Warden"]
