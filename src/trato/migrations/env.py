"""Alembic environment: migrations run against the configured database (TRATO_DATABASE_URL)."""

from __future__ import annotations

from alembic import context

from trato import tables
from trato.core.db import get_engine

config = context.config


def run() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _migrate(connectable)
        return
    with get_engine().connect() as connection:
        _migrate(connection)
        connection.commit()


def _migrate(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=tables.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
