"""What the archive API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field

from trato.archive.models import ArchivedMessage, ArchiveStatus


class StatusOut(BaseModel):
    status: str
    at: datetime
    provider_id: str | None
    details: dict[str, Any] | None

    @classmethod
    def of(cls, row: ArchiveStatus) -> StatusOut:
        return cls(status=row.status, at=row.at, provider_id=row.provider_id, details=row.details)


class ArchivedMessageOut(BaseModel):
    id: str
    sequence: int
    customer_id: str
    communication_id: str
    version_id: str
    channel: str
    language: str
    recipient: str | None = Field(description="null once erased at the customer's request")
    message_id: str | None
    is_test: bool
    storage: str = Field(description="parts: the rendered parts are kept; context: the render context is")
    content_sha256: str
    created_at: datetime
    sent_at: datetime | None
    status: str
    status_at: datetime | None
    erased_at: datetime | None
    prev_hash: str
    entry_hash: str

    @classmethod
    def of(cls, entry: ArchivedMessage) -> ArchivedMessageOut:
        return cls(**{name: getattr(entry, name) for name in cls.model_fields})


class ArchivedMessageDetail(ArchivedMessageOut):
    decision: dict[str, Any] | None = Field(description="the policy decision that allowed the message")
    statuses: list[StatusOut]

    @classmethod
    def with_history(cls, entry: ArchivedMessage, statuses: list[ArchiveStatus]) -> ArchivedMessageDetail:
        base = ArchivedMessageOut.of(entry).model_dump()
        return cls(**base, decision=orjson.loads(entry.decision) if entry.decision else None,
                   statuses=[StatusOut.of(s) for s in statuses])


class ArchivePage(BaseModel):
    items: list[ArchivedMessageOut]
    next_before: int | None = Field(description="pass as 'before' for the next (older) page")
