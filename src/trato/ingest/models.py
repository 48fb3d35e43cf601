"""Sources: the systems that send events, each with its write key (stored hashed); the inbox of
accepted tracking calls waiting to be folded into the customer memory."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from trato.core.clock import utcnow
from trato.core.db import NAMING, Base, BigIntPK, UTCDateTime


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



# The inbox is not in Base's metadata: on SQLite it lives in a database file of its own beside the
# main one (trato.inbox.db), so that accepting calls never waits for the folder's write lock;
# on PostgreSQL it is a table of the main database (migration 0004), where row locks suffice.
inbox_metadata = MetaData(naming_convention=NAMING)

# Tracking calls accepted by the API and not yet folded into the customer memory: one row per
# accepted request, its JSON body as received (or, when some of its calls were rejected or lacked
# a messageId, the accepted calls alone, each with its messageId). ``error`` is set on a row that
# could not be folded even alone: it is kept, shown in the status, and skipped. ``leased_until``
# (SQLite, epoch seconds) marks rows a folder is folding.
inbox_table = Table(
    "ingest_inbox", inbox_metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("source_id", String(40), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("call_type", String(16)),  # None: a batch body ({"batch": [...], "sentAt", "context"})
    Column("body", Text, nullable=False),
    Column("events", Integer, nullable=False),
    Column("error", Text),
    Column("leased_until", Float),
    Index("ix_ingest_inbox_source_id_id", "source_id", "id"),
)
