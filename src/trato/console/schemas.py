"""What the tokens API reads and writes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    role: str = Field(default="viewer", examples=["admin", "editor", "viewer"])


class TokenOut(BaseModel):
    id: str
    name: str
    role: str
    token_prefix: str
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(BaseModel):
    token: TokenOut
    secret: str = Field(description="shown once: send it as 'Authorization: Bearer <secret>'")
