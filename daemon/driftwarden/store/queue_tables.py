"""The distributed queue's tables: procrastinate's own schema, in the store's PostgreSQL
database beside driftwarden's tables. Applied once, by whichever worker starts first (the
others wait for it on a transaction lock), at the version pinned in requirements/lock.txt.
"""

from __future__ import annotations

import sqlalchemy
from procrastinate.schema import SchemaManager

from driftwarden.domain.errors import DriftwardenError
from driftwarden.store.db import Store
from driftwarden.store.locks import named_lock_key

_SCHEMA_LOCK = "driftwarden:queue-schema"


def ensure_queue_schema(store: Store) -> bool:
    """Create procrastinate's tables unless they exist; True if this call created them."""
    if store.dialect != "postgresql":
        raise DriftwardenError(
            "the distributed queue needs a PostgreSQL store",
            hint='set [daemon] database_url = "postgresql://…", or mode = "single"',
        )
    with store.unpooled().begin() as connection:
        connection.execute(
            sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"),
            {"key": named_lock_key(_SCHEMA_LOCK)},
        )
        exists = connection.execute(
            sqlalchemy.text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        ).scalar_one()
        if exists:
            return False
        # Straight to psycopg, without parameters: the script's own `%` stay as they are.
        cursor = connection.connection.cursor()
        try:
            cursor.execute(SchemaManager.get_schema())
        finally:
            cursor.close()
    return True
