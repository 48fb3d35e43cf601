"""Input and output of the campaigns API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(None, max_length=16)
    communication: str = Field(min_length=1, max_length=80, description="communication id or key")
    version_id: str | None = Field(None, max_length=40, description="an approved version (default: the approved one)")
    split: int = Field(100, ge=1, le=100, description="percentage of the non-holdout recipients")


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    segment_id: str = Field(min_length=1, max_length=40)
    communication: str | None = Field(None, max_length=80)
    variants: list[VariantIn] | None = Field(None, max_length=10)
    channels: list[str] | None = Field(None, max_length=8)
    strategy: Literal["preferred", "fixed"] = "preferred"
    purpose: str | None = Field(None, max_length=40)
    topic: str = Field("", max_length=40)
    holdout_percent: int = Field(0, ge=0, le=50)
    schedule: Literal["now", "at", "local"] = "now"
    send_at: datetime | None = None
    local_time: str | None = Field(None, max_length=5, description="HH:MM in each recipient's zone")
    throttle_per_minute: int | None = Field(None, ge=1, le=1_000_000)
    chunk_size: int = Field(500, ge=1, le=5000)
    data: dict[str, Any] = Field(default_factory=dict)
    utm: dict[str, str] = Field(default_factory=dict)
    conversion_event: str | None = Field(None, max_length=200)
    conversion_days: int = Field(7, ge=1, le=90)
    seeds: list[str] = Field(default_factory=list, max_length=20)


class CampaignOut(BaseModel):
    id: str
    name: str
    state: str
    segment_id: str
    snapshot_id: str | None
    purpose: str
    topic: str
    strategy: str
    channels: list[str]
    variants: list[dict[str, Any]]
    holdout_percent: int
    schedule: str
    send_at: datetime | None
    local_time: str | None
    throttle_per_minute: int | None
    chunk_size: int
    conversion_event: str | None
    conversion_days: int
    approved_by: str | None
    recipients_total: int
    processed: int
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, c: Any) -> CampaignOut:
        return cls.model_validate(c, from_attributes=True)


class CampaignList(BaseModel):
    items: list[CampaignOut]


class TestSendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_ids: list[str] = Field(min_length=1, max_length=10)
    seeds: list[str] | None = Field(None, max_length=20)
