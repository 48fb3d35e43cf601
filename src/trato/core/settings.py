"""All configuration in one place, read from the environment (prefix ``TRATO_``) or ``.env``.

A wrong value stops start-up with a message that names the setting
(:func:`load_settings` turns pydantic's error into :class:`ConfigurationError`).
"""

from __future__ import annotations

import os
import re
import secrets
import zoneinfo
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from trato.core.errors import ConfigurationError

SUPPORTED_DRIVERS = ("sqlite", "postgresql+psycopg")
SECRET_FILE = ".trato_secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRATO_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./trato.db"
    redis_url: str | None = None
    secret_key: str | None = Field(default=None, repr=False)
    base_url: str = "http://127.0.0.1:8000"
    default_timezone: str = "Europe/Madrid"
    default_region: str = "ES"
    default_language: str = "es"
    # Revenue that does not say its currency is taken to be in this one (ISO 4217).
    default_currency: str = "EUR"
    log_level: str = "INFO"
    # Identity kinds of which one person has at most one value: two customers holding
    # different values of such a kind are never merged automatically.
    exclusive_identity_kinds: list[str] = ["user_id"]
    ingest_max_event_bytes: int = 32 * 1024
    ingest_max_batch_bytes: int = 500 * 1024
    # The tracking API answers once a call is in the inbox; a folder thread in each `trato serve`
    # moves the inbox into the customer memory, this many events a transaction at most.
    ingest_folder: bool = True
    ingest_fold_events: int = Field(default=2000, ge=1, le=100_000)
    # The company as its communications name it ({{ company.name }}, letters' sender line).
    company_name: str = "Trato Demo, S.A."
    company_address: str = "Calle de Alcalá 1, 28014 Madrid"
    # What one SMS segment costs, for the estimate shown before a version is approved.
    sms_price_per_segment: float = Field(default=0.05, ge=0)
    # Bounds of one template render: a template that runs longer or writes more fails clearly.
    template_timeout_ms: int = Field(default=200, ge=1, le=60_000)
    template_max_output_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Delivery providers, one URL each in the style Apprise made familiar (smtp://user:pass@host:587,
    # sandbox://); several separated by spaces or commas are tried in that order (failover).
    # An optional #fragment names the provider (its /hooks/{name}/ path). See delivery/channels/registry.py.
    email_url: str | None = None
    sms_url: str | None = None
    whatsapp_url: str | None = None
    push_url: str | None = None
    voice_url: str | None = None
    letter_url: str | None = None
    webhook_url: str | None = None
    # Providers' credentials stored in the database are encrypted with this key (Fernet); without it a
    # key is derived from TRATO_SECRET_KEY (HKDF). Changing either makes stored credentials unreadable.
    credentials_key: SecretStr | None = Field(default=None, repr=False)
    # A provider's circuit opens after this many clear refusals in a row and lets one send through
    # again after the cool-down.
    circuit_failures: int = Field(default=5, ge=1, le=1000)
    circuit_cooldown_seconds: float = Field(default=30.0, gt=0, le=3600)
    # A send that finds its provider's rate limit spent waits this long at most, then goes back on
    # the queue (not a failed attempt).
    rate_limit_wait_seconds: float = Field(default=2.0, ge=0, le=60)
    # Idempotency-Key answers are kept this long, then removed by a periodic task.
    idempotency_key_ttl_hours: float = Field(default=24.0, gt=0, le=24 * 90)
    # Processes that prepare a campaign's next chunk (decide, render, sign links, encode for the
    # archive) while the worker writes and sends the current one. Unset: as many as the CPUs (at
    # most 3; none on one CPU) on SQLite, where one process does everything; none on PostgreSQL (run more workers).
    campaign_prepare_processes: int | None = Field(default=None, ge=0, le=32)
    # The queue's (and the shared rate limits' and circuits') name in Redis: two installations may share one Redis.
    queue_name: str = Field(default="trato", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # Runs of one campaign at a time (launch and resume queue this many; each claims its own chunks).
    # Unset: 1 on SQLite (one writer), 2 on PostgreSQL.
    campaign_parallelism: int | None = Field(default=None, ge=1, le=64)
    # A campaign message left ``sending`` this long was being sent by a worker that stopped: the next
    # run marks it possibly sent (never sends it again). Keep it well past the providers' time-outs.
    campaign_stale_seconds: float = Field(default=300.0, ge=0.5, le=86_400)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc})") from None
        driver = url.drivername
        if driver == "postgresql":
            return value.replace("postgresql://", "postgresql+psycopg://", 1)
        if driver not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"unsupported database {driver!r}; use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("default_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        if value not in ("es", "en"):
            raise ValueError("must be 'es' or 'en'")
        return value

    @field_validator("default_currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{3}", value):
            raise ValueError("must be a three-letter ISO 4217 code such as EUR")
        return value.upper()

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        value = value.upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @field_validator("campaign_parallelism")
    @classmethod
    def _campaign_parallelism(cls, value: int | None, info: ValidationInfo) -> int | None:
        url = str(info.data.get("database_url") or "")
        if value is not None and value > 1 and url.startswith("sqlite"):
            raise ValueError("must be 1 on SQLite (one writer at a time); run several only on PostgreSQL")
        return value

    @model_validator(mode="after")
    def _secret(self) -> Settings:
        if self.secret_key is not None and len(self.secret_key) < 32:
            raise ValueError("TRATO_SECRET_KEY must be at least 32 characters")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def campaign_runs(self) -> int:
        """How many runs of one campaign go at once (``TRATO_CAMPAIGN_PARALLELISM`` or the database's default)."""
        if self.campaign_parallelism is not None:
            return self.campaign_parallelism
        return 1 if self.is_sqlite else 2

    def resolved_secret_key(self) -> str:
        """The secret key; on the embedded default one is generated once and kept beside the database."""
        if self.secret_key:
            return self.secret_key
        if not self.is_sqlite:
            raise ConfigurationError(
                "TRATO_SECRET_KEY", "is required when TRATO_DATABASE_URL is not SQLite (32+ characters)"
            )
        path = Path(SECRET_FILE)
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            os.chmod(path, 0o600)
        self.secret_key = path.read_text().strip()
        return self.secret_key


def load_settings(**overrides: object) -> Settings:
    """Read settings; a bad value raises ConfigurationError naming the ``TRATO_`` variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "secret_key"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigurationError(f"TRATO_{field.upper()}", message) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
