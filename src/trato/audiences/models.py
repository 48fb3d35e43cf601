"""Tables of segments: their definitions, static lists and membership snapshots for campaigns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from trato.core.clock import utcnow
from trato.core.db import Base, JSONType, UTCDateTime
from trato.customers.models import EventRollup, Identity

KINDS = ("dynamic", "static")


class Segment(Base):
    """A named audience: a condition tree (``dynamic``) or a list of customers (``static``)."""

    __tablename__ = "segments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    kind: Mapped[str] = mapped_column(String(16))
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SegmentListMember(Base):
    """One customer on a static list."""

    __tablename__ = "segment_list_members"

    segment_id: Mapped[str] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)


class SegmentSnapshot(Base):
    """Who was in a segment at one moment: what a campaign sends to, fixed once taken."""

    __tablename__ = "segment_snapshots"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    segment_id: Mapped[str] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), index=True)
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    # The tree as it was compiled (a segment may change after its snapshot).
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SegmentSnapshotMember(Base):
    """One member of a snapshot; keyed (snapshot, customer) so that campaigns page through it by id."""

    __tablename__ = "segment_snapshot_members"
    __table_args__ = (Index("ix_segment_snapshot_members_segment", "segment_id"),)

    snapshot_id: Mapped[str] = mapped_column(ForeignKey("segment_snapshots.id", ondelete="CASCADE"),
                                             primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    segment_id: Mapped[str] = mapped_column(String(40))


# Indexes segments need on the customer memory's tables (created by the audiences migration):
# behavioural counts read the rollups of one event name over a range of days, index-only.
Index("ix_event_rollups_name_day", EventRollup.name, EventRollup.day, EventRollup.customer_id, EventRollup.count)
Index("ix_identities_kind_customer", Identity.kind, Identity.customer_id)
