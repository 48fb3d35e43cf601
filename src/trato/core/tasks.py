"""Housekeeping that runs on the queue."""

from __future__ import annotations

from huey import crontab
from sqlalchemy import text

from trato.core.db import get_engine
from trato.core.queue import huey


@huey.periodic_task(crontab(minute="17"))
def optimize_database() -> None:
    """Keep SQLite's query planner statistics fresh (PostgreSQL's autovacuum does this itself)."""
    engine = get_engine()
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA optimize")


@huey.task()
def ping() -> str:
    """Round trip through the queue: answers "pong" when a worker is running."""
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))
    return "pong"
