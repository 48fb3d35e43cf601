"""Tables of campaigns: the campaign, one row per recipient (the pipeline's truth: each customer is
processed exactly once per campaign), what recipients did afterwards (opens, clicks, ...) and the
short links of text messages (SMS, WhatsApp)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from trato.core.clock import utcnow
from trato.core.db import Base, BigIntPK, JSONType, UTCDateTime

STATES = ("draft", "scheduled", "running", "paused", "done", "cancelled")
SCHEDULES = ("now", "at", "local")
STRATEGIES = ("preferred", "fixed")
# pending → holdout | excluded | queued (a delivery message exists) → sent | failed | possibly_sent;
# a pending recipient with not_before waits for its local time or the end of a deferral.
RECIPIENT_STATES = ("pending", "holdout", "excluded", "queued", "sent", "failed", "possibly_sent")
EVENT_KINDS = ("opened", "clicked", "unsubscribed", "converted")
CONTACTED = ("queued", "sent", "possibly_sent")
# Recipients whose conversions count: contacted, held out, or tried (the holdout comparison needs all).
ATTRIBUTED = (*CONTACTED, "holdout", "failed")
# Timeline kinds a conversion event is stored as: the tracking API keeps purchases ("Order
# Completed", ...) as "purchase", every other named event as "track".
CONVERSION_KINDS = ("track", "purchase")


class Campaign(Base):
    """A send of approved communications to a segment's snapshot, with its schedule, variants and counters."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    segment_id: Mapped[str] = mapped_column(String(40))
    snapshot_id: Mapped[str | None] = mapped_column(String(40))
    purpose: Mapped[str] = mapped_column(String(40))
    topic: Mapped[str] = mapped_column(String(40), default="")
    strategy: Mapped[str] = mapped_column(String(16), default="preferred")
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # [{"key": "A", "communication_id": ..., "version_id": ... | None, "split": 50}, ...]
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    schedule: Mapped[str] = mapped_column(String(16), default="now")
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    local_time: Mapped[str | None] = mapped_column(String(5))  # "HH:MM" in each recipient's zone
    throttle_per_minute: Mapped[int | None] = mapped_column(Integer)
    # A throttled campaign's next chunk starts no earlier than this, whichever run takes it.
    paced_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    chunk_size: Mapped[int] = mapped_column(Integer, default=500)
    utm: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    conversion_event: Mapped[str | None] = mapped_column(String(200))
    conversion_days: Mapped[int] = mapped_column(Integer, default=7)
    seeds: Mapped[list[str]] = mapped_column(JSONType, default=list)
    state: Mapped[str] = mapped_column(String(16), default="draft")
    approved_by: Mapped[str | None] = mapped_column(String(120))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recipients_total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignRecipient(Base):
    """One member of the campaign's snapshot and where they stand; unique per campaign and customer."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id"),
        # Chunks take the next pending recipients in id order: a range of this index, not a sort of
        # every pending recipient for each chunk (a million of them at the start of a big campaign).
        Index("ix_campaign_recipients_queue", "campaign_id", "state", "id"),
        # Recipients follow their messages' states, found by message id (only those that have one:
        # see ix_customers_merged_into_id for why a mostly-NULL column gets a partial index).
        Index("ix_campaign_recipients_message", "message_id", sqlite_where=text("message_id IS NOT NULL"),
              postgresql_where=text("message_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    customer_id: Mapped[str] = mapped_column(String(40))
    variant: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    channel: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(40))
    message_id: Mapped[str | None] = mapped_column(String(40))
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CampaignEvent(Base):
    """What a recipient did after the message: opened, clicked, unsubscribed, converted (first time each)."""

    __tablename__ = "campaign_events"
    __table_args__ = (UniqueConstraint("campaign_id", "customer_id", "kind"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    customer_id: Mapped[str] = mapped_column(String(40))
    variant: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(String(2000))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ShortLink(Base):
    """A link of a campaign's text message (SMS, WhatsApp) as ``{base_url}/s/{code}``: the code is
    derived from the message and the link with the installation's secret, so a chunk done again
    stores the same rows, and it is the only way to the target (nothing in the code says where)."""

    __tablename__ = "campaign_short_links"
    __table_args__ = (Index("ix_campaign_short_links_campaign", "campaign_id"),)

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    customer_id: Mapped[str] = mapped_column(String(40))
    variant: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    # "c": a link of the message (a click); "p": the customer's own preference or unsubscribe page
    # (followed, never counted as a click).
    kind: Mapped[str] = mapped_column(String(1), default="c")
    target: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
