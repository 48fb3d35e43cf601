"""Tables of the archive: one hash-chained row per message sent, its delivery states, the chain head.

What the chain covers lives in :mod:`trato.archive.chain`. Personal content (recipient, stored
content, decision) sits in columns that erasure empties; the hashes that cover it stay.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from trato.core.clock import utcnow
from trato.core.db import Base, BigIntPK, JSONType, UTCDateTime

STORAGE_PARTS = "parts"  # the rendered parts, compressed (archive.compression: zstd; older entries zlib)
STORAGE_CONTEXT = "context"  # the render context (compressed); the content domain reproduces the parts


class ArchiveChainHead(Base):
    """One row: the newest entry's sequence and hash. Locked by every append, so the chain never forks."""

    __tablename__ = "archive_chain_head"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    sequence: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[str] = mapped_column(String(64))


class ArchivedMessage(Base):
    """The proof of one message sent: to whom, what (or what reproduces it), why, and when."""

    __tablename__ = "archived_messages"
    __table_args__ = (
        Index("ix_archived_messages_customer", "customer_id", "sequence"),
        Index("ix_archived_messages_communication", "communication_id", "sequence"),
        Index("ix_archived_messages_created", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, unique=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    # Plain strings, no foreign keys: the archive outlives whatever the content domain does.
    communication_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(320))
    # A random salt per entry: once erasure drops it, the recipient hash no longer tells who it was.
    recipient_salt: Mapped[str | None] = mapped_column(String(32))
    recipient_sha256: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(120), unique=True)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)

    storage: Mapped[str] = mapped_column(String(16))
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    context_sha256: Mapped[str | None] = mapped_column(String(64))
    # Canonical JSON text (sorted keys, compact): exactly the bytes its hash covers.
    decision: Mapped[str | None] = mapped_column(Text, deferred=True)
    decision_sha256: Mapped[str | None] = mapped_column(String(64))

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))

    # Outside the chain: delivery states arrive later, erasure happens later.
    status: Mapped[str] = mapped_column(String(20), default="archived")
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ArchiveStatus(Base):
    """A delivery state of an archived message (accepted, delivered, bounced, ...), as reported."""

    __tablename__ = "archive_statuses"
    # Lookups by entry use the unique constraint, which starts with entry_id (no index of its own).
    __table_args__ = (UniqueConstraint("entry_id", "status", "at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("archived_messages.id"))
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    provider_id: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
