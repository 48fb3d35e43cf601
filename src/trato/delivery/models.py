"""Tables of delivery: one row per message asked for, its state history, and the idempotency keys
of the send API. The message row is the truth; queued tasks only carry its id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from trato.core.clock import utcnow
from trato.core.db import Base, BigIntPK, JSONType, UTCDateTime

# decided → queued → sending → accepted → delivered → read, or failed | bounced after acceptance
# (the provider's status callbacks); deferred and refused by policy; retrying after a clear
# refusal; dead after the last retry; possibly_sent when a provider may have taken the message
# before a crash or a timeout (never resent automatically). A complaint is an event, not a state.
STATES = ("decided", "deferred", "refused", "queued", "sending", "retrying", "accepted", "delivered", "read",
          "failed", "bounced", "dead", "possibly_sent")
FINAL_STATES = frozenset({"refused", "accepted", "delivered", "read", "failed", "bounced", "dead", "possibly_sent"})


class Message(Base):
    """One message asked for: whom, what, the policy's decision and where delivery stands."""

    __tablename__ = "delivery_messages"
    __table_args__ = (
        Index("ix_delivery_messages_customer", "customer_id", "created_at"),
        Index("ix_delivery_messages_state", "state", "updated_at"),
        Index("ix_delivery_messages_provider_id", "provider_message_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    communication_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[str] = mapped_column(String(40))
    purpose: Mapped[str] = mapped_column(String(40))
    topic: Mapped[str] = mapped_column(String(40), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    requested_channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    channel: Mapped[str | None] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str | None] = mapped_column(String(40))
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    reservation_id: Mapped[int | None] = mapped_column(BigInteger)
    archive_entry_id: Mapped[str | None] = mapped_column(String(40))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # deferred / next retry
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MessageEvent(Base):
    """One state change of a message, with the provider's id or the error that caused it."""

    __tablename__ = "delivery_message_events"
    __table_args__ = (Index("ix_delivery_message_events_message", "message_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("delivery_messages.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class IdempotencyKey(Base):
    """An ``Idempotency-Key`` of one client: the request it came with and the first response.

    ``status_code`` is null while the first request is still being handled (in flight).
    """

    __tablename__ = "delivery_idempotency_keys"

    principal: Mapped[str] = mapped_column(String(120), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    message_id: Mapped[str | None] = mapped_column(String(40))
    locked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
