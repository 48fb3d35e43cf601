"""Tables of the customer memory: profiles, identities, the timeline, rollups and the merge log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from trato.core.clock import utcnow
from trato.core.db import Base, BigIntPK, JSONType, UTCDateTime


class Customer(Base):
    """One person. Traits are free JSON; the well-known ones are also kept typed, for search."""

    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_search_name", "search_name", postgresql_ops={"search_name": "varchar_pattern_ops"}),
        # Only merged profiles are indexed: almost every profile has NULL here, and with a full index
        # SQLite's statistics (PRAGMA optimize) say "a million rows per key" and the planner scans
        # every customer to find the few merged into a chunk of 500 — half a second per chunk.
        Index("ix_customers_merged_into_id", "merged_into_id", sqlite_where=text("merged_into_id IS NOT NULL"),
              postgresql_where=text("merged_into_id IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    traits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # When each trait was last set (ISO text), so that merges keep the newer value.
    trait_times: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)

    first_name: Mapped[str | None] = mapped_column(String(120))
    last_name: Mapped[str | None] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))
    birthday: Mapped[date | None] = mapped_column(Date)
    customer_since: Mapped[date | None] = mapped_column(Date)
    # Lower-cased "first last" for prefix search by name.
    search_name: Mapped[str | None] = mapped_column(String(250))

    # Computed traits, kept up to date on ingest.
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    last_purchase_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purchase_count: Mapped[int] = mapped_column(Integer, default=0)
    last_channel: Mapped[str | None] = mapped_column(String(32))

    # A merged profile stays, pointing at the survivor, so that an unmerge can bring it back.
    merged_into_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"))
    merged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Identity(Base):
    """A way to recognise a customer (user id, e-mail, phone, device, social handle, ...).

    The unique (kind, value) constraint makes every identity belong to exactly one customer.
    ``origin_customer_id`` is the profile it was first attached to: unmerging sends it back there.
    """

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("kind", "value"),
        # Prefix search on any identity; pattern ops let PostgreSQL use it for LIKE 'x%'.
        Index("ix_identities_value", "value", postgresql_ops={"value": "varchar_pattern_ops"}),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    origin_customer_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(512))
    # How it was linked: the call ("identify", "track", "alias", "import", "api") and where from.
    linked_via: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str | None] = mapped_column(String(40))
    message_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(Base):
    """One entry on a customer's timeline: anything that happened, from any system.

    Exactly-once per (source, messageId) by the unique constraint.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source_id", "message_id"),
        Index("ix_events_customer_time", "customer_id", "occurred_at"),
        Index("ix_events_name_time", "name", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    # Not indexed: unmerge reads it among one customer's events (ix_events_customer_time).
    origin_customer_id: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(128))
    # identify, track, page, screen, group, alias, purchase, message_sent, message_received,
    # case, consent, note
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    revenue_cents: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))


class EventRollup(Base):
    """Events per customer, name and day: behavioural questions read this, not raw events."""

    __tablename__ = "event_rollups"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class CustomerRevenue(Base):
    """Lifetime value per currency: amounts in different currencies are never added together."""

    __tablename__ = "customer_revenue"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    cents: Mapped[int] = mapped_column(BigInteger, default=0)


class CustomerMerge(Base):
    """The merge log: why two profiles became one (or were refused), from which event, what moved."""

    __tablename__ = "customer_merges"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # merged | refused | undone
    survivor_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    merged_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    explanation: Mapped[str] = mapped_column(String(500))
    trigger_identity: Mapped[str | None] = mapped_column(String(600))
    source_id: Mapped[str | None] = mapped_column(String(40))
    message_id: Mapped[str | None] = mapped_column(String(128))
    # What moved: identities, event count, and the trait values that lost ("older kept here").
    moved: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    survivor_before: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    merged_before: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_by: Mapped[str | None] = mapped_column(String(120))
