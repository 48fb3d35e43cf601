"""The audit trail: who changed what, written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, Session, mapped_column

from trato.core.clock import utcnow
from trato.core.db import Base, BigIntPK, JSONType, UTCDateTime


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(64), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


def record(
    session: Session, *, actor: str, action: str, object_type: str, object_id: str, **details: Any
) -> AuditEntry:
    """Add an audit row to the caller's unit of work."""
    entry = AuditEntry(
        actor=actor, action=action, object_type=object_type, object_id=object_id, details=details
    )
    session.add(entry)
    return entry
