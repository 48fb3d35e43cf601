"""Tables of the content domain: the communications inventory, their template versions with
review comments, and the reusable content blocks (header, footer, legal text, signature).

A version's content never changes once written: every save creates a new version, so an
approval, an archived message or a diff always points at exactly the text it names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from trato.core.clock import utcnow
from trato.core.db import Base, BigIntPK, JSONType, UTCDateTime
from trato.policy.service import DEFAULT_PURPOSES

# Why a company sends a communication: the contact policy's purposes, since consent is given per purpose.
PURPOSES: Final[tuple[str, ...]] = tuple(code for code, *_ in DEFAULT_PURPOSES)
KINDS: Final[tuple[str, ...]] = ("reactive", "proactive")
STATUSES: Final[tuple[str, ...]] = ("draft", "active", "retired")
VERSION_STATUSES: Final[tuple[str, ...]] = ("draft", "in_review", "approved", "changes_requested")
BLOCK_KINDS: Final[tuple[str, ...]] = ("header", "footer", "legal", "signature")


class Communication(Base):
    """A business message the company sends: why, who owns it, and on which channels."""

    __tablename__ = "communications"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(32), index=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(Text, default="")
    regulatory_notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    default_language: Mapped[str] = mapped_column(String(8))
    # What the communication must cover: every channel in every language (checked before review).
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # An example of the trigger's data (``{{ data.* }}``): what previews and preflight render with.
    sample_data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    latest_version_id: Mapped[str | None] = mapped_column(String(40))
    approved_version_id: Mapped[str | None] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TemplateVersion(Base):
    """One saved state of a communication's templates: channel variants × languages, as JSON.

    ``content`` is ``{channel: {language: {field: text}}}``; ``blocks`` pins the content block
    versions it includes (``{key: block_version_id}``), so rendering it again gives the same bytes.
    """

    __tablename__ = "communication_versions"
    __table_args__ = (UniqueConstraint("communication_id", "number"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    communication_id: Mapped[str] = mapped_column(ForeignKey("communications.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    blocks: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    content_sha256: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(120))
    note: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(24), default="draft")
    # The preflight findings when it was submitted, and the warnings the approver acknowledged.
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    acknowledged_warnings: Mapped[list[str]] = mapped_column(JSONType, default=list)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VersionComment(Base):
    """A reviewer's or author's comment on a version (also the reason for requested changes)."""

    __tablename__ = "communication_version_comments"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("communication_versions.id"), index=True)
    author: Mapped[str] = mapped_column(String(120))
    # comment | submitted | approved | changes_requested
    action: Mapped[str] = mapped_column(String(24), default="comment")
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContentBlock(Base):
    """Reusable text shared by many communications, included as ``{% include "blocks/KEY" %}``."""

    __tablename__ = "content_blocks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    latest_version_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ContentBlockVersion(Base):
    """One saved text of a block, per language (``{language: template text}``)."""

    __tablename__ = "content_block_versions"
    __table_args__ = (UniqueConstraint("block_id", "number"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    block_id: Mapped[str] = mapped_column(ForeignKey("content_blocks.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, str]] = mapped_column(JSONType)
    content_sha256: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContentBlockUse(Base):
    """Which communication versions include which block: answers "who uses this footer?"."""

    __tablename__ = "content_block_uses"
    __table_args__ = (Index("ix_content_block_uses_block_key", "block_key"),)

    version_id: Mapped[str] = mapped_column(ForeignKey("communication_versions.id"), primary_key=True)
    block_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    communication_id: Mapped[str] = mapped_column(String(40))
