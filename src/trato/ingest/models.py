"""Sources: the systems that send events, each with its write key (stored hashed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from trato.core.clock import utcnow
from trato.core.db import Base, UTCDateTime


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    write_key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    write_key_prefix: Mapped[str] = mapped_column(String(16))
    # Applied to events that do not say their channel or department themselves.
    default_channel: Mapped[str | None] = mapped_column(String(32))
    default_department: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
