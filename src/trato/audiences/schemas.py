"""Input and output of the segments API. A definition arrives as plain JSON and is checked by the
service, so that a bad node is reported by its path (``definition.conditions[2].within_days``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DEFINITION_DOC = (
    "A condition tree: {\"type\": \"and\"|\"or\", \"conditions\": [...]}, {\"type\": \"not\", \"condition\": ...} "
    "or a condition of type trait, date, identity, computed, event, sequence, consent, reachable or segment."
)


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=500)
    kind: Literal["dynamic", "static"] = "dynamic"
    definition: dict[str, Any] | None = Field(None, description=DEFINITION_DOC)


class SegmentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=120)
    description: str | None = Field(None, max_length=500)
    definition: dict[str, Any] | None = Field(None, description=DEFINITION_DOC)


class SegmentOut(BaseModel):
    id: str
    name: str
    description: str
    kind: str
    definition: dict[str, Any] | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, segment: Any) -> SegmentOut:
        return cls(id=segment.id, name=segment.name, description=segment.description, kind=segment.kind,
                   definition=segment.definition, created_by=segment.created_by, created_at=segment.created_at,
                   updated_at=segment.updated_at)


class SegmentList(BaseModel):
    items: list[SegmentOut]


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any] = Field(description=DEFINITION_DOC)
    sample: int = Field(10, ge=0, le=100)


class Member(BaseModel):
    id: str
    name: str
    email: str | None


class PreviewOut(BaseModel):
    count: int
    sample: list[Member]


class CountOut(BaseModel):
    segment_id: str
    count: int


class MembersOut(BaseModel):
    items: list[str]
    next_after: str | None = Field(None, description="pass as ?after= for the next page; null on the last one")


class SnapshotOut(BaseModel):
    id: str
    segment_id: str
    member_count: int
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, snapshot: Any) -> SnapshotOut:
        return cls(id=snapshot.id, segment_id=snapshot.segment_id, member_count=snapshot.member_count,
                   created_by=snapshot.created_by, created_at=snapshot.created_at)


class UploadOut(BaseModel):
    rows: int
    matched: int
    unmatched_count: int
    unmatched: list[str]
