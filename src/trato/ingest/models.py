"""Sources: the systems that send events, each with its write key (stored hashed); the inbox of
accepted tracking calls waiting to be folded into the customer memory."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from trato.core.clock import utcnow
from trato.core.db import Base, BigIntPK, UTCDateTime


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


class InboxEntry(Base):
    """Tracking calls accepted by the API and not yet folded into the customer memory.

    One row per accepted request: its JSON body as received (or, when some of its calls were
    rejected or lacked a messageId, the accepted calls alone, each with its messageId). The
    folder deletes a row in the same transaction that stores its events.
    """

    __tablename__ = "ingest_inbox"
    __table_args__ = (Index("ix_ingest_inbox_source_id_id", "source_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(String(40), ForeignKey("sources.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # None: a batch body ({"batch": [...], "sentAt", "context"}); else the call type of one call.
    call_type: Mapped[str | None] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    events: Mapped[int] = mapped_column(Integer)
    # Set when the row could not be folded even alone: it is kept, shown in the status, and skipped.
    error: Mapped[str | None] = mapped_column(Text)
