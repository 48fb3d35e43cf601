"""What the customer API reads and writes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trato.customers.models import Customer, CustomerMerge, Event, Identity


class IdentityIn(BaseModel):
    kind: str = Field(max_length=64, examples=["email"])
    value: str = Field(max_length=512, examples=["ana@example.com"])


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    traits: dict[str, Any] = Field(default_factory=dict)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=50)


class TraitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    traits: dict[str, Any] = Field(description="traits to set; null removes one")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=5000)
    department: str = Field(min_length=1, max_length=64, examples=["service"])
    channel: str | None = Field(default=None, max_length=32, examples=["call_center"])


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    other_id: str = Field(description="the profile to merge into this one")
    force: bool = Field(default=False, description="merge even profiles with different user ids")


class UnmergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    merge_id: str | None = Field(default=None, description="which merge to undo; default: the one that merged this profile")


class IdentityOut(BaseModel):
    kind: str
    value: str
    linked_via: str
    source_id: str | None
    message_id: str | None
    original_customer_id: str
    created_at: datetime

    @classmethod
    def of(cls, identity: Identity) -> IdentityOut:
        return cls(
            kind=identity.kind, value=identity.value, linked_via=identity.linked_via,
            source_id=identity.source_id, message_id=identity.message_id,
            original_customer_id=identity.origin_customer_id, created_at=identity.created_at,
        )


class ComputedTraits(BaseModel):
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    event_count: int
    purchase_count: int
    last_purchase_at: datetime | None
    lifetime_value: dict[str, float] = Field(description="revenue to date per currency (ISO 4217)")
    last_channel: str | None


class CustomerOut(BaseModel):
    id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    locale: str | None
    timezone: str | None
    country: str | None
    birthday: date | None
    customer_since: date | None
    traits: dict[str, Any]
    computed: ComputedTraits
    merged_into: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Customer, lifetime_value: dict[str, int] | None = None) -> CustomerOut:
        """The profile; ``lifetime_value`` in minor units per currency, from the revenue table."""
        return cls(
            id=c.id, first_name=c.first_name, last_name=c.last_name, email=c.email, phone=c.phone,
            locale=c.locale, timezone=c.timezone, country=c.country, birthday=c.birthday,
            customer_since=c.customer_since, traits=c.traits or {}, merged_into=c.merged_into_id,
            created_at=c.created_at, updated_at=c.updated_at,
            computed=ComputedTraits(
                first_seen_at=c.first_seen_at, last_seen_at=c.last_seen_at, event_count=c.event_count or 0,
                purchase_count=c.purchase_count or 0, last_purchase_at=c.last_purchase_at,
                lifetime_value={cur: cents / 100 for cur, cents in (lifetime_value or {}).items()},
                last_channel=c.last_channel,
            ),
        )


class EventOut(BaseModel):
    id: int
    kind: str
    name: str | None
    channel: str | None
    department: str | None
    source_id: str
    message_id: str
    occurred_at: datetime
    received_at: datetime
    properties: dict[str, Any]
    revenue: float | None

    @classmethod
    def of(cls, e: Event) -> EventOut:
        return cls(
            id=e.id, kind=e.kind, name=e.name, channel=e.channel, department=e.department,
            source_id=e.source_id, message_id=e.message_id, occurred_at=e.occurred_at,
            received_at=e.received_at, properties=e.properties or {},
            revenue=None if e.revenue_cents is None else e.revenue_cents / 100,
        )


class MergeOut(BaseModel):
    id: str
    status: str
    survivor_id: str
    merged_id: str
    reason: str
    explanation: str
    trigger_identity: str | None
    source_id: str | None
    message_id: str | None
    moved: dict[str, Any]
    actor: str
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None

    @classmethod
    def of(cls, m: CustomerMerge) -> MergeOut:
        return cls(
            id=m.id, status=m.status, survivor_id=m.survivor_id, merged_id=m.merged_id, reason=m.reason,
            explanation=m.explanation, trigger_identity=m.trigger_identity, source_id=m.source_id,
            message_id=m.message_id, moved=m.moved or {}, actor=m.actor, created_at=m.created_at,
            undone_at=m.undone_at, undone_by=m.undone_by,
        )


class ChannelSummary(BaseModel):
    channel: str
    count: int
    last_at: datetime | None


class Customer360(BaseModel):
    customer: CustomerOut
    identities: list[IdentityOut]
    event_counts: dict[str, int]
    channels: list[ChannelSummary]
    recent: list[EventOut]
    merges: list[MergeOut]
    # From the contact policy (policy.service.consent_summary): channel, purpose, topic, state, source, updated_at.
    consents: list[dict[str, Any]] = Field(default_factory=list)


class TimelinePage(BaseModel):
    items: list[EventOut]
    next_before: int | None = Field(description="pass as 'before' for the next (older) page")


class CustomerList(BaseModel):
    items: list[CustomerOut]
