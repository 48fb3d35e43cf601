"""HTTP routes of segments (``/api/v1/segments``): CRUD, live preview of an unsaved tree, counts,
members page by page, snapshots for campaigns and static lists uploaded as CSV.

Viewers read and preview; editors create, change, snapshot and upload; deleting needs an editor too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from trato.audiences import service
from trato.audiences.errors import InvalidList, InvalidSegment
from trato.audiences.schemas import (
    CountOut, Member, MembersOut, PreviewIn, PreviewOut, SegmentIn, SegmentList, SegmentOut, SegmentPatch,
    SnapshotOut, UploadOut,
)
from trato.console.auth import require
from trato.console.service import Principal
from trato.core.errors import PayloadTooLarge
from trato.core.db import unit_of_work
from trato.core.http import db_read_session, db_session

router = APIRouter(prefix="/api/v1/segments", tags=["segments"])
MAX_UPLOAD = 5 * 1024 * 1024


def _with_prefix(exc: InvalidSegment, prefix: str) -> InvalidSegment:
    """Paths in errors name the node from the request body's root."""
    details = exc.details if isinstance(exc.details, dict) else {}
    path = details.get("path")
    if isinstance(path, str) and not path.startswith(prefix):
        full = prefix if path in ("", "$") else f"{prefix}.{path}" if not path.startswith("[") else prefix + path
        details = {**details, "path": full}
        for problem in details.get("problems", []):
            p = problem.get("path", "")
            problem["path"] = prefix if p in ("", "$") else f"{prefix}.{p}" if not p.startswith("[") else prefix + p
        exc.details = details
        exc.message = f"{full}: {exc.message.split(': ', 1)[-1]}"
    return exc


@router.get("", response_model=SegmentList)
def list_segments(session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer"))):
    return SegmentList(items=[SegmentOut.of(s) for s in service.list_segments(session)])


@router.post("", response_model=SegmentOut, status_code=201)
def create_segment(body: SegmentIn, session: Session = Depends(db_session),
                   who: Principal = Depends(require("editor"))) -> SegmentOut:
    try:
        segment = service.create_segment(session, name=body.name, description=body.description, kind=body.kind,
                                         definition=body.definition, actor=who.actor)
    except InvalidSegment as exc:
        raise _with_prefix(exc, "definition") from None
    session.commit()
    return SegmentOut.of(segment)


@router.post("/preview", response_model=PreviewOut)
def preview(body: PreviewIn, session: Session = Depends(db_read_session),
            _: Principal = Depends(require("viewer"))) -> PreviewOut:
    """Count and sample of an unsaved tree, as the condition builder shows them while editing."""
    try:
        found = service.preview(session, definition=body.definition, limit=body.sample or 1)
    except InvalidSegment as exc:
        raise _with_prefix(exc, "definition") from None
    return PreviewOut(count=found["count"], sample=[Member(**m) for m in found["sample"]][: body.sample])


@router.get("/{segment_id}", response_model=SegmentOut)
def get_segment(segment_id: str, session: Session = Depends(db_read_session),
                _: Principal = Depends(require("viewer"))) -> SegmentOut:
    return SegmentOut.of(service.get_segment(session, segment_id))


@router.patch("/{segment_id}", response_model=SegmentOut)
def update_segment(segment_id: str, body: SegmentPatch, session: Session = Depends(db_session),
                   who: Principal = Depends(require("editor"))) -> SegmentOut:
    try:
        segment = service.update_segment(session, segment_id=segment_id, actor=who.actor, name=body.name,
                                         description=body.description, definition=body.definition)
    except InvalidSegment as exc:
        raise _with_prefix(exc, "definition") from None
    session.commit()
    return SegmentOut.of(segment)


@router.delete("/{segment_id}", status_code=204)
def delete_segment(segment_id: str, session: Session = Depends(db_session),
                   who: Principal = Depends(require("editor"))) -> Response:
    service.delete_segment(session, segment_id=segment_id, actor=who.actor)
    session.commit()
    return Response(status_code=204)


@router.get("/{segment_id}/count", response_model=CountOut)
def count(segment_id: str, session: Session = Depends(db_read_session),
          _: Principal = Depends(require("viewer"))) -> CountOut:
    return CountOut(segment_id=segment_id, count=service.count(session, segment_id=segment_id))


@router.get("/{segment_id}/members", response_model=MembersOut)
def members(segment_id: str, after: str | None = Query(None, max_length=40), limit: int = Query(100, ge=1, le=10_000),
            session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer"))) -> MembersOut:
    """Member ids in id order, a page at a time: pass ``next_after`` back as ``after``."""
    items = service.page_members(session, segment_id=segment_id, after=after, limit=limit)
    return MembersOut(items=items, next_after=items[-1] if len(items) == limit else None)


@router.post("/{segment_id}/snapshots", response_model=SnapshotOut, status_code=201)
def take_snapshot(segment_id: str, session: Session = Depends(db_session),
                  who: Principal = Depends(require("editor"))) -> SnapshotOut:
    snapshot = service.take_snapshot(session, segment_id=segment_id, actor=who.actor)
    session.commit()
    return SnapshotOut.of(snapshot)


@router.get("/{segment_id}/snapshots", response_model=list[SnapshotOut])
def list_snapshots(segment_id: str, session: Session = Depends(db_read_session),
                   _: Principal = Depends(require("viewer"))) -> list[SnapshotOut]:
    return [SnapshotOut.of(s) for s in service.list_snapshots(session, segment_id=segment_id)]


@router.get("/{segment_id}/snapshots/{snapshot_id}/members", response_model=MembersOut)
def snapshot_members(segment_id: str, snapshot_id: str, after: str | None = Query(None, max_length=40),
                     limit: int = Query(1000, ge=1, le=10_000), session: Session = Depends(db_read_session),
                     _: Principal = Depends(require("viewer"))) -> MembersOut:
    snapshot = service.get_snapshot(session, snapshot_id)
    if snapshot.segment_id != segment_id:
        service.get_segment(session, segment_id)
        raise service.SnapshotNotFound(f"segment {segment_id} has no snapshot {snapshot_id}")
    items = service.snapshot_members(session, snapshot_id=snapshot.id, after=after, limit=limit)
    return MembersOut(items=items, next_after=items[-1] if len(items) == limit else None)


@router.put("/{segment_id}/list", response_model=UploadOut,
            openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def upload_list(segment_id: str, request: Request, replace: bool = Query(True),
                      who: Principal = Depends(require("editor"))) -> UploadOut:
    """A static list from CSV (``Content-Type: text/csv``): one customer per row by id, e-mail or phone.
    ``replace=false`` adds to the list instead of replacing it."""
    body = await request.body()
    if len(body) > MAX_UPLOAD:
        raise PayloadTooLarge(f"a list is at most {MAX_UPLOAD // (1024 * 1024)} MB")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidList("the list must be UTF-8 text") from None
    if "\x00" in text:
        raise InvalidList("the list must be text, without NUL characters")
    def upload() -> dict[str, Any]:
        with unit_of_work() as session:
            return service.upload_list(session, segment_id=segment_id, data=text, actor=who.actor, replace=replace)

    return UploadOut(**await run_in_threadpool(upload))
