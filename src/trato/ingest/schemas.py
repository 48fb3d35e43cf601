"""What the sources API and the ingest status read and write."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from trato.ingest.models import Source


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    default_channel: str | None = Field(default=None, max_length=32, examples=["web"])
    default_department: str | None = Field(default=None, max_length=64, examples=["sales"])


class SourceOut(BaseModel):
    id: str
    name: str
    write_key_prefix: str
    default_channel: str | None
    default_department: str | None
    created_at: datetime

    @classmethod
    def of(cls, s: Source) -> SourceOut:
        return cls(
            id=s.id, name=s.name, write_key_prefix=s.write_key_prefix, default_channel=s.default_channel,
            default_department=s.default_department, created_at=s.created_at,
        )


class SourceCreated(BaseModel):
    source: SourceOut
    write_key: str = Field(description="shown once; store it in the sending system")


class InboxStatusOut(BaseModel):
    """The fold's lag: tracking calls accepted (answered 200) and not yet in the customer memory."""

    backlog_requests: int
    backlog_events: int
    oldest_received_at: str | None
    oldest_age_seconds: float
    failed_requests: int = Field(description="requests that could not be folded; kept aside with their error")
