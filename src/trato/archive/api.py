"""HTTP routes of the archive (``/api/v1/archive``): compliance search, one entry, its content.

Searching and reading an entry's metadata needs the viewer role, as the customer's 360° view
does (it shows the same addresses). The content itself — what the customer read — needs the
editor role, and every download is written to the audit trail: who looked at which message.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from trato.archive import proof, service
from trato.archive.schemas import ArchivedMessageDetail, ArchivedMessageOut, ArchivePage
from trato.console.auth import require
from trato.console.service import Principal
from trato.core import audit
from trato.core.channels import Channel
from trato.core.http import db_read_session, db_session

router = APIRouter(prefix="/api/v1/archive", tags=["archive"])
CONTENT_ROLE = "editor"


@router.get("", response_model=ArchivePage)
def search_archive(
    customer_id: str | None = Query(None, max_length=64),
    communication_id: str | None = Query(None, max_length=64),
    channel: Channel | None = None,
    since: datetime | None = Query(None, description="archived at or after (ISO 8601)"),
    until: datetime | None = Query(None, description="archived before (ISO 8601)"),
    before: int | None = Query(None, ge=1, le=2**63 - 1, description="'next_before' of the previous page"),
    limit: int = Query(50, ge=1, le=500),
    session: Session = Depends(db_read_session),
    _: Principal = Depends(require("viewer")),
) -> ArchivePage:
    items = service.search(session, customer_id=customer_id, communication_id=communication_id, channel=channel,
                           since=since, until=until, before=before, limit=limit)
    return ArchivePage(items=[ArchivedMessageOut.of(e) for e in items],
                       next_before=items[-1].sequence if len(items) == limit else None)


@router.get("/{entry_id}", response_model=ArchivedMessageDetail)
def get_archived_message(
    entry_id: str, session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer"))
) -> ArchivedMessageDetail:
    entry = service.get_entry(session, entry_id)
    return ArchivedMessageDetail.with_history(entry, service.statuses_of(session, entry.id))


@router.get(
    "/{entry_id}/content",
    response_class=Response,
    responses={200: {"description": "the part's exact bytes (e-mail HTML, SMS text, letter PDF, or all parts as JSON)",
                     "content": {"text/html": {}, "text/plain": {}, "application/pdf": {}, "application/json": {}}}},
)
def download_content(
    entry_id: str,
    part: str | None = Query(None, max_length=64, description="a part's name; default: the channel's main part"),
    session: Session = Depends(db_session),
    who: Principal = Depends(require(CONTENT_ROLE)),
) -> Response:
    found = proof.download(session, entry_id=entry_id, part=part)
    entry = service.get_entry(session, entry_id)
    audit.record(session, actor=who.actor, action="archive.content_download", object_type="archived_message",
                 object_id=entry.id, part=found.part)
    session.commit()
    return Response(found.body, media_type=found.media_type,
                    headers=proof.headers_for(found, content_sha256=entry.content_sha256))
