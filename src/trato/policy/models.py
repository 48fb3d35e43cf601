"""Tables of the contact policy: purposes and topics, consent (current state and its history),
suppressions, quiet hours, frequency caps, the contact ledger and the decision log.

A consent's ``topic`` is ``""`` when it covers the whole purpose; quiet-hour rules use channel
``"*"`` for every channel. Empty strings rather than NULLs keep the unique constraints simple on
both databases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from trato.core.clock import utcnow
from trato.core.db import Base, BigIntPK, JSONType, UTCDateTime


class Purpose(Base):
    """Why a company writes (service, marketing, ...); its legal basis says if consent is needed."""

    __tablename__ = "policy_purposes"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_en: Mapped[str] = mapped_column(String(120))
    name_es: Mapped[str] = mapped_column(String(120))
    # consent | contract | legal_obligation | legitimate_interest
    legal_basis: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def requires_consent(self) -> bool:
        return self.legal_basis == "consent"


class Topic(Base):
    """A subject under a purpose (marketing → newsletter, offers) that can be refused on its own."""

    __tablename__ = "policy_topics"
    __table_args__ = (UniqueConstraint("purpose", "key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    purpose: Mapped[str] = mapped_column(ForeignKey("policy_purposes.key", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(40))
    name_en: Mapped[str] = mapped_column(String(120))
    name_es: Mapped[str] = mapped_column(String(120))


class Consent(Base):
    """The current state for one customer × channel × purpose[/topic]; its history is ConsentChange."""

    __tablename__ = "policy_consents"
    __table_args__ = (UniqueConstraint("customer_id", "channel", "purpose", "topic"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(40))
    topic: Mapped[str] = mapped_column(String(40), default="")
    # granted | denied | pending (e-mail double opt-in not yet confirmed)
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentChange(Base):
    """Append-only: every change of a consent, with where it came from and its proof."""

    __tablename__ = "policy_consent_history"
    __table_args__ = (Index("ix_policy_consent_history_customer_at", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(40))
    topic: Mapped[str] = mapped_column(String(40), default="")
    state: Mapped[str] = mapped_column(String(16))
    previous: Mapped[str] = mapped_column(String(16))
    # form | api | import | inbound | agent | preference_center | double_opt_in | privacy
    source: Mapped[str] = mapped_column(String(32))
    # wording version shown, IP, user agent, or the inbound message
    proof: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    actor: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Suppression(Base):
    """Never contact this address or customer (in a scope), until it expires.

    Addresses are matched by ``value_hash`` (keyed HMAC of the normal form), so that an erased
    person's entry keeps blocking their address without the address itself being kept.
    """

    __tablename__ = "policy_suppressions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # email | phone | customer
    value: Mapped[str | None] = mapped_column(String(320))  # None once the person is erased
    value_hash: Mapped[str] = mapped_column(String(64), index=True)
    # hard_bounce | complaint | stop_keyword | legal_hold | erased | unsubscribe | manual
    reason: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(16))  # None: every channel
    purpose: Mapped[str | None] = mapped_column(String(40))  # None: every purpose
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuietHours(Base):
    """When a purpose may reach people on a channel, local time: from ``start`` to ``end`` minute."""

    __tablename__ = "policy_quiet_hours"
    __table_args__ = (UniqueConstraint("purpose", "channel"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    purpose: Mapped[str] = mapped_column(ForeignKey("policy_purposes.key", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16), default="*")
    # Allowed from start (inclusive) to end (exclusive), minutes after local midnight; start > end
    # wraps past midnight. ``exempt`` lets this purpose/channel through at any hour.
    start_minute: Mapped[int] = mapped_column(Integer, default=8 * 60)
    end_minute: Mapped[int] = mapped_column(Integer, default=21 * 60)
    exempt: Mapped[bool] = mapped_column(Boolean, default=False)


class ConfigStamp(Base):
    """One row whose ``stamp`` changes (a fresh random value) in the same transaction as every
    change to purposes, topics, quiet hours or caps: a process may reuse the configuration it
    read under the stamp it reads now. Random, not a counter, so that an emptied and refilled
    database never repeats a stamp a process has cached."""

    __tablename__ = "policy_config_stamp"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stamp: Mapped[str] = mapped_column(String(40))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FrequencyCap(Base):
    """At most ``max_count`` messages in a rolling ``window_seconds``, counting sends that match the
    cap's filters (a filter left empty matches everything: purpose only = across all channels)."""

    __tablename__ = "policy_caps"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    purpose: Mapped[str | None] = mapped_column(String(40))
    channel: Mapped[str | None] = mapped_column(String(16))
    communication: Mapped[str | None] = mapped_column(String(120))
    max_count: Mapped[int] = mapped_column(Integer)
    window_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactPreference(Base):
    """A customer's own choices (preferred channel, frequency) and the row decisions lock on."""

    __tablename__ = "policy_preferences"

    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    preferred_channel: Mapped[str | None] = mapped_column(String(16))
    # normal | weekly | monthly: how often consent-based messages may come at most
    frequency: Mapped[str] = mapped_column(String(16), default="normal")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactLedger(Base):
    """Every message actually sent (or reserved by a decision): frequency caps count from here."""

    __tablename__ = "policy_contacts"
    __table_args__ = (
        Index("ix_policy_contacts_customer_at", "customer_id", "sent_at"),
        UniqueConstraint("message_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(40))
    topic: Mapped[str] = mapped_column(String(40), default="")
    communication: Mapped[str] = mapped_column(String(120))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="sent")  # reserved | sent | released
    message_id: Mapped[str | None] = mapped_column(String(128))


class DecisionLog(Base):
    """One row per decision, compact: outcome, channel and the per-channel reason codes."""

    __tablename__ = "policy_decisions"
    __table_args__ = (Index("ix_policy_decisions_customer_at", "customer_id", "decided_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    communication: Mapped[str] = mapped_column(String(120))
    purpose: Mapped[str] = mapped_column(String(40))
    topic: Mapped[str] = mapped_column(String(40), default="")
    outcome: Mapped[str] = mapped_column(String(8))  # send | defer | refuse
    channel: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the send is (or would be) allowed
    # [[channel, code, until-iso-or-null], ...] in the order considered
    reasons: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
