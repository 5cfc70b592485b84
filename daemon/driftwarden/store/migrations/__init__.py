"""The audit store's Alembic environment, shipped inside the package (no alembic.ini).

`db.upgrade` hands over an open connection already inside a locked transaction, so the
environment never connects by itself.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(connection: sqlalchemy.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def run_upgrade(connection: sqlalchemy.Connection) -> str:
    """Upgrade to head on `connection` (inside the caller's transaction); the revision."""
    command.upgrade(alembic_config(connection), "head")
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None:
        raise RuntimeError("the audit store has no schema revision after upgrading")
    return revision
