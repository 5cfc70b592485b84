"""systemd credentials (LoadCredential=): files in `$CREDENTIALS_DIRECTORY`, readable by
the unit only. The one place that reads the variable."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CREDENTIALS = "CREDENTIALS_DIRECTORY"


def credentials_directory() -> Path | None:
    """The unit's credentials directory; None outside a unit that loads credentials."""
    directory = os.environ.get(ENV_CREDENTIALS)
    return Path(directory) if directory else None


def credential(name: str) -> Path | None:
    """The credential file `name`, when the unit has it."""
    directory = credentials_directory()
    if directory is not None and (directory / name).is_file():
        return directory / name
    return None
