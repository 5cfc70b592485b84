"""Alembic runtime environment: online migrations on the connection `db.upgrade` gives."""

from __future__ import annotations

import sqlalchemy
from alembic import context
from sqlmodel import SQLModel

import driftwarden.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, sqlalchemy.Connection):
        raise RuntimeError("driftwarden migrations run through driftwarden.store.db.upgrade")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: Alembic rebuilds tables in batch mode instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")
run_migrations_online()
