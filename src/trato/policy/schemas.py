"""What the policy API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from trato.policy.models import Consent, ConsentChange, DecisionLog, FrequencyCap, Purpose, QuietHours, Suppression, Topic
from trato.policy.rules import Decision

KEY = r"^[a-z][a-z0-9_-]{0,39}$"


def _reasonable(value: datetime | None) -> datetime | None:
    if value is not None and not 1970 <= value.year <= 9000:
        raise ValueError("must be between the years 1970 and 9000")
    return value


class DecideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str = Field(max_length=40)
    communication: str = Field(min_length=1, max_length=120, examples=["spring-offers"])
    purpose: str = Field(max_length=40, examples=["marketing"])
    channels: list[str] = Field(min_length=1, max_length=7, examples=[["email", "sms"]])
    topic: str | None = Field(default=None, max_length=40)
    at: datetime | None = Field(default=None, description="when the send would happen; default now")

    @field_validator("at")
    @classmethod
    def _at(cls, value: datetime | None) -> datetime | None:
        return _reasonable(value)


class ReasonOut(BaseModel):
    channel: str
    code: str
    until: datetime | None
    text: dict[str, str]


class DecisionOut(BaseModel):
    outcome: str
    channel: str | None
    at: datetime | None
    until: datetime | None
    zone: str
    reasons: list[ReasonOut]

    @classmethod
    def of(cls, decision: Decision) -> DecisionOut:
        data = decision.as_dict()
        data.pop("reservation_id")
        return cls(**data)


class TopicIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=KEY, examples=["newsletter"])
    name_en: str = Field(min_length=1, max_length=120)
    name_es: str = Field(min_length=1, max_length=120)


class TopicOut(BaseModel):
    key: str
    name_en: str
    name_es: str

    @classmethod
    def of(cls, topic: Topic) -> TopicOut:
        return cls(key=topic.key, name_en=topic.name_en, name_es=topic.name_es)


class PurposeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=KEY, examples=["loyalty"])
    name_en: str = Field(min_length=1, max_length=120)
    name_es: str = Field(min_length=1, max_length=120)
    legal_basis: str = Field(max_length=32, examples=["consent"],
                             description="consent, contract, legal_obligation or legitimate_interest")


class PurposePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name_en: str | None = Field(default=None, min_length=1, max_length=120)
    name_es: str | None = Field(default=None, min_length=1, max_length=120)
    legal_basis: str | None = Field(default=None, max_length=32)


class PurposeOut(BaseModel):
    key: str
    name_en: str
    name_es: str
    legal_basis: str
    requires_consent: bool
    topics: list[TopicOut]

    @classmethod
    def of(cls, purpose: Purpose, topics: list[Topic]) -> PurposeOut:
        return cls(key=purpose.key, name_en=purpose.name_en, name_es=purpose.name_es,
                   legal_basis=purpose.legal_basis, requires_consent=purpose.requires_consent,
                   topics=[TopicOut.of(t) for t in topics])


class QuietHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(max_length=40)
    channel: str = Field(default="*", max_length=16, description="a channel, or * for every channel")
    start: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="allowed from (local)")
    end: str = Field(default="21:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="allowed until (local)")
    exempt: bool = Field(default=False, description="this purpose/channel may go out at any hour")


def minutes(text: str) -> int:
    hours, mins = text.split(":")
    return int(hours) * 60 + int(mins)


class QuietHoursOut(BaseModel):
    purpose: str
    channel: str
    start: str
    end: str
    exempt: bool

    @classmethod
    def of(cls, rule: QuietHours) -> QuietHoursOut:
        def text(m: int) -> str:
            return f"{m // 60:02d}:{m % 60:02d}"

        return cls(purpose=rule.purpose, channel=rule.channel, start=text(rule.start_minute),
                   end=text(rule.end_minute), exempt=rule.exempt)


class CapIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_count: int = Field(ge=1, le=10_000, examples=[3])
    window_seconds: int = Field(ge=60, le=366 * 86400, examples=[604800])
    purpose: str | None = Field(default=None, max_length=40)
    channel: str | None = Field(default=None, max_length=16)
    communication: str | None = Field(default=None, max_length=120)


class CapOut(BaseModel):
    id: str
    max_count: int
    window_seconds: int
    purpose: str | None
    channel: str | None
    communication: str | None

    @classmethod
    def of(cls, cap: FrequencyCap) -> CapOut:
        return cls(id=cap.id, max_count=cap.max_count, window_seconds=cap.window_seconds, purpose=cap.purpose,
                   channel=cap.channel, communication=cap.communication)


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = Field(max_length=16, examples=["email"])
    purpose: str = Field(max_length=40, examples=["marketing"])
    topic: str | None = Field(default=None, max_length=40)
    state: str = Field(max_length=16, examples=["granted"], description="granted or denied")
    source: str = Field(default="api", max_length=32)
    proof: dict[str, Any] = Field(default_factory=dict, description="wording version, IP, user agent, message ...")

    @field_validator("proof")
    @classmethod
    def _proof(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(orjson.dumps(value))
        except TypeError:
            raise ValueError("must be plain JSON; numbers must fit in 64 bits") from None
        if size > 4096:
            raise ValueError("must be at most 4 KB of JSON")
        return value


class ConsentOut(BaseModel):
    channel: str
    purpose: str
    topic: str | None
    state: str
    source: str
    updated_at: datetime

    @classmethod
    def of(cls, consent: Consent) -> ConsentOut:
        return cls(channel=consent.channel, purpose=consent.purpose, topic=consent.topic or None,
                   state=consent.state, source=consent.source, updated_at=consent.updated_at)


class ConsentChangeOut(BaseModel):
    channel: str
    purpose: str
    topic: str | None
    state: str
    previous: str
    source: str
    proof: dict[str, Any]
    actor: str
    at: datetime

    @classmethod
    def of(cls, change: ConsentChange) -> ConsentChangeOut:
        return cls(channel=change.channel, purpose=change.purpose, topic=change.topic or None, state=change.state,
                   previous=change.previous, source=change.source, proof=change.proof, actor=change.actor,
                   at=change.at)


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preferred_channel: str | None = Field(default=None, max_length=16, description='"" clears it')
    frequency: str | None = Field(default=None, max_length=16, description="normal, weekly or monthly")


class DecisionLogOut(BaseModel):
    communication: str
    purpose: str
    topic: str | None
    outcome: str
    channel: str | None
    at: datetime
    reasons: list[Any]
    decided_at: datetime

    @classmethod
    def of(cls, row: DecisionLog) -> DecisionLogOut:
        return cls(communication=row.communication, purpose=row.purpose, topic=row.topic or None,
                   outcome=row.outcome, channel=row.channel, at=row.at, reasons=row.reasons,
                   decided_at=row.decided_at)


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(max_length=16, examples=["email"], description="email, phone or customer")
    value: str = Field(min_length=1, max_length=320)
    reason: str = Field(max_length=32, examples=["hard_bounce"])
    channel: str | None = Field(default=None, max_length=16)
    purpose: str | None = Field(default=None, max_length=40)
    expires_at: datetime | None = None
    note: str | None = Field(default=None, max_length=500)

    @field_validator("expires_at")
    @classmethod
    def _expires(cls, value: datetime | None) -> datetime | None:
        return _reasonable(value)


class SuppressionOut(BaseModel):
    id: str
    kind: str
    value: str | None
    reason: str
    channel: str | None
    purpose: str | None
    expires_at: datetime | None
    note: str | None
    created_at: datetime

    @classmethod
    def of(cls, s: Suppression) -> SuppressionOut:
        return cls(id=s.id, kind=s.kind, value=s.value, reason=s.reason, channel=s.channel, purpose=s.purpose,
                   expires_at=s.expires_at, note=s.note, created_at=s.created_at)


class KeywordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = Field(max_length=16, examples=["sms"])
    address: str = Field(min_length=1, max_length=320, examples=["+34612345678"])
    text: str = Field(max_length=2000, examples=["BAJA"])


class KeywordOut(BaseModel):
    action: str | None
    customer_id: str | None
    changed: int
