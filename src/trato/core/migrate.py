"""Schema migrations (Alembic), run by ``trato db upgrade`` and by ``make run``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from trato.core.db import get_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(revision: str = "head") -> None:
    command.upgrade(alembic_config(), revision)


def downgrade(revision: str) -> None:
    command.downgrade(alembic_config(), revision)


def make_revision(message: str) -> None:
    """Autogenerate a migration from the models (for developers)."""
    command.revision(alembic_config(), message=message, autogenerate=True)


def is_empty() -> bool:
    return "customers" not in inspect(get_engine()).get_table_names()
