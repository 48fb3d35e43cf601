"""What the sources API reads and writes."""

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
