"""Pydantic I/O of the send API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trato.core.channels import Channel
from trato.delivery.models import Message, MessageEvent, PushRegistration

MAX_DATA_BYTES = 64 * 1024


class CustomerRef(BaseModel):
    """Exactly one of: the trato id, or an identity (user_id, email, phone)."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, max_length=64)
    user_id: str | None = Field(None, max_length=255)
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40)

    @model_validator(mode="after")
    def _exactly_one(self) -> CustomerRef:
        given = [name for name, value in self.model_dump().items() if value is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of id, user_id, email, phone")
        return self

    def reference(self) -> tuple[str, str]:
        return next((name, value) for name, value in self.model_dump().items() if value is not None)


class SendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: CustomerRef
    communication: str = Field(min_length=1, max_length=80, description="the communication's id or key")
    data: dict[str, Any] = Field(default_factory=dict)
    channels: list[Channel] | None = Field(None, min_length=1, max_length=7,
                                           description="fallback order; default: the communication's channels")
    purpose: str | None = Field(None, min_length=1, max_length=40)
    topic: str | None = Field(None, min_length=1, max_length=40)

    @field_validator("data")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(orjson.dumps(value))
        except TypeError as exc:  # e.g. an integer past 64 bits: no database column keeps it
            raise ValueError(f"data cannot be stored: {exc}") from None
        if size > MAX_DATA_BYTES:
            raise ValueError(f"data is {size} bytes as JSON; at most {MAX_DATA_BYTES}")
        return value


class MessageEventOut(BaseModel):
    state: str
    at: datetime
    details: dict[str, Any]

    @classmethod
    def of(cls, event: MessageEvent) -> MessageEventOut:
        return cls(state=event.state, at=event.at, details=event.details or {})


class MessageOut(BaseModel):
    id: str
    state: str
    customer_id: str
    communication_id: str
    purpose: str
    topic: str | None
    requested_channels: list[str]
    channel: str | None
    decision: dict[str, Any] | None
    provider: str | None
    provider_message_id: str | None
    archive_entry_id: str | None
    attempts: int
    last_error: str | None
    not_before: datetime | None
    created_at: datetime
    accepted_at: datetime | None
    events: list[MessageEventOut]

    @classmethod
    def of(cls, message: Message, events: list[MessageEvent]) -> MessageOut:
        return cls(
            id=message.id, state=message.state, customer_id=message.customer_id,
            communication_id=message.communication_id, purpose=message.purpose, topic=message.topic or None,
            requested_channels=list(message.requested_channels or []), channel=message.channel,
            decision=message.decision, provider=message.provider, provider_message_id=message.provider_message_id,
            archive_entry_id=message.archive_entry_id, attempts=message.attempts, last_error=message.last_error,
            not_before=message.not_before, created_at=message.created_at, accepted_at=message.accepted_at,
            events=[MessageEventOut.of(e) for e in events],
        )


class PushKeys(BaseModel):
    p256dh: str = Field(min_length=1, max_length=128)
    auth: str = Field(min_length=1, max_length=64)


class PushSubscriptionIn(BaseModel):
    """A Web Push subscription exactly as the browser's ``PushSubscription.toJSON()`` gives it."""

    endpoint: str = Field(min_length=1, max_length=2048)
    expirationTime: int | float | None = None  # noqa: N815 (the browser's own name)
    keys: PushKeys


class PushRegistrationIn(BaseModel):
    """A device (``fcm`` with the app's registration token) or a browser (``webpush`` with its subscription)."""

    model_config = ConfigDict(extra="forbid")
    platform: Literal["webpush", "fcm"]
    token: str | None = Field(None, min_length=1, max_length=4096)
    subscription: PushSubscriptionIn | None = None
    label: str | None = Field(None, max_length=200, description="e.g. 'Chrome on Android', shown to people")


class PushRegistrationOut(BaseModel):
    id: str
    customer_id: str
    platform: str
    # The FCM token or the subscription's endpoint, shortened: enough to tell devices apart.
    token_hint: str
    label: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, registration: PushRegistration, customer_id: str) -> PushRegistrationOut:
        token = registration.token
        hint = token if len(token) <= 48 else f"{token[:40]}…{token[-6:]}"
        return cls(id=registration.id, customer_id=customer_id, platform=registration.platform, token_hint=hint,
                   label=registration.label, created_at=registration.created_at, updated_at=registration.updated_at)
# -- providers ------------------------------------------------------------------------------------

PROVIDER_NAME = r"^[a-z0-9][a-z0-9-]{0,39}$"


class ProviderIn(BaseModel):
    """A new provider: its adapter and settings, or one URL (``smtp://user:pass@host:587``)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=PROVIDER_NAME, examples=["smtp-backup"])
    adapter: str | None = Field(None, max_length=40, examples=["smtp"])
    url: str | None = Field(None, max_length=2000, examples=["smtp://user:password@mail.example:587?tls=starttls"])
    channels: list[Channel] | None = Field(None, max_length=7, description="default: every channel of the adapter")
    priority: int = Field(100, ge=0, le=10_000, description="lower goes first among a channel's stored providers")
    enabled: bool = True
    settings: dict[str, Any] | None = Field(None, description="the adapter's settings; secrets are stored sealed")
    max_per_second: float | None = Field(None, gt=0, le=100_000, description="overrides the adapter's rate limit")


class ProviderPatch(BaseModel):
    """Changes to a stored provider; ``settings`` are merged (a secret sent back masked is kept)."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, max_length=2000)
    channels: list[Channel] | None = Field(None, min_length=1, max_length=7)
    priority: int | None = Field(None, ge=0, le=10_000)
    enabled: bool | None = None
    settings: dict[str, Any] | None = None
    max_per_second: float | None = Field(None, gt=0, le=100_000)


class ProviderOut(BaseModel):
    name: str
    adapter: str
    channels: list[str]
    priority: int
    enabled: bool
    origin: str = Field(description="settings (a TRATO_*_URL variable) or database (the API and CLI)")
    setting: str | None
    settings: dict[str, Any] = Field(description="secrets shown as •••• and their last four characters at most")
    max_per_second: float | None
    circuit: dict[str, Any] = Field(description="state (closed, open, half_open), failures in a row, retry_in s")
    updated_at: datetime | None

    @classmethod
    def of(cls, view: Any) -> ProviderOut:
        return cls(**{name: getattr(view, name) for name in cls.model_fields})


class ProviderCheckOut(BaseModel):
    ok: bool
    detail: str
