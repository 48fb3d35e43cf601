"""HTTP routes of the content domain: ``/api/v1/communications`` and ``/api/v1/content-blocks``.

Viewers read; editors create, save versions, submit and comment; approving or requesting
changes also needs the editor role, and never by the version's author (four eyes).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from trato.console.auth import require
from trato.console.service import Principal
from trato.content import blocks as block_service
from trato.content import preview as previews
from trato.content import service
from trato.content.errors import VersionNotFound
from trato.content.models import PURPOSES, STATUSES
from trato.content.schemas import (
    BlockIn, BlockOut, BlockPatch, CommunicationIn, CommunicationList, CommunicationOut, CommunicationPatch,
    PreviewIn, ReviewIn, VersionList, VersionOut,
)
from trato.core.channels import CHANNELS
from trato.core.clock import iso
from trato.core.csvsafe import safe_cell
from trato.core.errors import InvalidInput
from trato.core.http import db_read_session, db_session

router = APIRouter(prefix="/api/v1/communications", tags=["communications"])
blocks_router = APIRouter(prefix="/api/v1/content-blocks", tags=["content blocks"])


def _check_filters(purpose: str | None, channel: str | None, status: str | None) -> None:
    for value, allowed, name in ((purpose, PURPOSES, "purpose"), (channel, CHANNELS, "channel"),
                                 (status, STATUSES, "status")):
        if value is not None and value not in allowed:
            raise InvalidInput(f"{name} must be one of {', '.join(allowed)}", code="invalid_filter",
                               details={"field": name})


def _filtered(session: Session, purpose: str | None, department: str | None, channel: str | None,
              status: str | None, q: str | None) -> list[dict[str, Any]]:
    _check_filters(purpose, channel, status)
    found = service.list_communications(session, purpose=purpose, department=department, channel=channel,
                                        status=status, query=q)
    return service.inventory(session, found)


def _one(session: Session, communication_id: str) -> CommunicationOut:
    communication = service.get_communication(session, communication_id)
    return CommunicationOut(**service.inventory(session, [communication])[0])


@router.get("", response_model=CommunicationList)
def list_communications(
    purpose: str | None = None, department: str | None = Query(None, max_length=64), channel: str | None = None,
    status: str | None = None, q: str | None = Query(None, max_length=200),
    session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer")),
) -> CommunicationList:
    rows = _filtered(session, purpose, department, channel, status, q)
    return CommunicationList(items=[CommunicationOut(**row) for row in rows])


def inventory_csv(rows: list[dict[str, Any]]) -> str:
    """The inventory as CSV text, every cell safe to open in a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(service.INVENTORY_COLUMNS)
    for row in rows:
        cells = []
        for column in service.INVENTORY_COLUMNS:
            value = row.get(column)
            if isinstance(value, list):
                value = " ".join(value)
            elif hasattr(value, "isoformat"):
                value = iso(value)
            cells.append(safe_cell(value))
        writer.writerow(cells)
    return "\ufeff" + buffer.getvalue()


@router.get("/export.csv", response_class=Response)
def export_communications(
    purpose: str | None = None, department: str | None = Query(None, max_length=64), channel: str | None = None,
    status: str | None = None, q: str | None = Query(None, max_length=200),
    session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer")),
) -> Response:
    body = inventory_csv(_filtered(session, purpose, department, channel, status, q))
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="communications.csv"'})


@router.post("", response_model=CommunicationOut, status_code=201)
def create_communication(
    body: CommunicationIn, session: Session = Depends(db_session), who: Principal = Depends(require("editor")),
) -> CommunicationOut:
    fields = body.model_dump(exclude_none=True, exclude={"content", "note"})
    communication = service.create_communication(session, actor=who.actor, content=body.content or None,
                                                 note=body.note, **fields)
    session.commit()
    return _one(session, communication.id)


@router.get("/{communication_id}", response_model=CommunicationOut)
def get_communication(communication_id: str, session: Session = Depends(db_read_session),
                      _: Principal = Depends(require("viewer"))) -> CommunicationOut:
    return _one(session, communication_id)


@router.patch("/{communication_id}", response_model=CommunicationOut)
def update_communication(
    communication_id: str, body: CommunicationPatch, session: Session = Depends(db_session),
    who: Principal = Depends(require("editor")),
) -> CommunicationOut:
    fields = body.model_dump(exclude_none=True, exclude={"content", "note"})
    communication = service.update_communication(session, communication_id=communication_id, actor=who.actor,
                                                 content=body.content, note=body.note, **fields)
    session.commit()
    return _one(session, communication.id)


def _version_out(session: Session, versions: list[Any]) -> list[VersionOut]:
    comments = service.comments_of(session, version_ids=[v.id for v in versions])
    return [VersionOut.of(v, comments.get(v.id)) for v in versions]


@router.get("/{communication_id}/versions", response_model=VersionList)
def list_versions(communication_id: str, session: Session = Depends(db_read_session),
                  _: Principal = Depends(require("viewer"))) -> VersionList:
    return VersionList(items=_version_out(session, service.list_versions(session, communication_id=communication_id)))


@router.post("/{communication_id}/versions", response_model=VersionOut, status_code=201)
def save_version(
    communication_id: str, body: CommunicationPatch, session: Session = Depends(db_session),
    who: Principal = Depends(require("editor")),
) -> VersionOut:
    if body.content is None:
        raise InvalidInput("a new version needs its content", code="content_required")
    version = service.save_version(session, communication_id=communication_id, content=body.content,
                                   actor=who.actor, note=body.note)
    session.commit()
    return _version_out(session, [version])[0]


def _version_of(session: Session, communication_id: str, version_id: str) -> Any:
    communication = service.get_communication(session, communication_id)
    version = service.get_version(session, version_id)
    if version.communication_id != communication.id:
        raise VersionNotFound(f"{version_id} is not a version of {communication.key}",
                              details={"version_id": version_id})
    return version


@router.get("/{communication_id}/versions/{version_id}", response_model=VersionOut)
def get_version(communication_id: str, version_id: str, session: Session = Depends(db_read_session),
                _: Principal = Depends(require("viewer"))) -> VersionOut:
    return _version_out(session, [_version_of(session, communication_id, version_id)])[0]


@router.get("/{communication_id}/versions/{version_id}/preflight")
def preflight(communication_id: str, version_id: str, session: Session = Depends(db_read_session),
              _: Principal = Depends(require("viewer"))) -> dict[str, Any]:
    version = _version_of(session, communication_id, version_id)
    findings = service.preflight(session, version_id=version.id)
    return {"version_id": version.id, "findings": [f.to_dict() for f in findings],
            "errors": sum(f.severity == "error" for f in findings)}


@router.get("/{communication_id}/diff")
def diff(communication_id: str, from_version: str = Query(alias="from", max_length=40),
         to_version: str = Query(alias="to", max_length=40), session: Session = Depends(db_read_session),
         _: Principal = Depends(require("viewer"))) -> dict[str, Any]:
    old = _version_of(session, communication_id, from_version)
    new = _version_of(session, communication_id, to_version)
    return {"from": old.id, "to": new.id, "fields": [
        {"field": d.field, "change": d.change, "diff": d.diff}
        for d in service.diff_versions(session, from_version_id=old.id, to_version_id=new.id)]}


def _decide(action: str, communication_id: str, version_id: str, body: ReviewIn | None, session: Session,
            who: Principal) -> VersionOut:
    version = _version_of(session, communication_id, version_id)
    body = body or ReviewIn()
    if action == "submit":
        service.submit(session, version_id=version.id, actor=who.actor, comment=body.comment)
    elif action == "approve":
        service.approve(session, version_id=version.id, actor=who.actor, comment=body.comment,
                        acknowledge=body.acknowledge)
    elif action == "request-changes":
        service.request_changes(session, version_id=version.id, actor=who.actor, comment=body.comment)
    else:
        service.add_comment(session, version_id=version.id, actor=who.actor, body=body.comment)
    session.commit()
    return _version_out(session, [version])[0]


def _decision_route(action: str) -> None:
    def route(communication_id: str, version_id: str, body: ReviewIn | None = None,
              session: Session = Depends(db_session), who: Principal = Depends(require("editor"))) -> VersionOut:
        return _decide(action, communication_id, version_id, body, session, who)

    route.__name__ = f"version_{action.replace('-', '_')}"
    router.post(f"/{{communication_id}}/versions/{{version_id}}/{action}", response_model=VersionOut,
                name=route.__name__)(route)


for _action in ("submit", "approve", "request-changes", "comments"):
    _decision_route(_action)


@router.post("/{communication_id}/preview")
def preview(communication_id: str, body: PreviewIn, session: Session = Depends(db_read_session),
            _: Principal = Depends(require("viewer"))) -> dict[str, Any]:
    communication = service.get_communication(session, communication_id)
    if body.channels:
        _check_filters(None, next((c for c in body.channels if c not in CHANNELS), None), None)
    return previews.preview(session, communication=communication, customer_id=body.customer_id, sample=body.sample,
                            language=body.language, data=body.data or None, version_id=body.version_id,
                            channels=body.channels)


# -- content blocks -------------------------------------------------------------------------------------------


def _block_out(session: Session, key: str) -> BlockOut:
    block = block_service.get_block(session, key)
    version = block_service.latest_version(session, block)
    return BlockOut(id=block.id, key=block.key, kind=block.kind, name=block.name, version=version.number,
                    version_id=version.id, body=version.body, used_by=block_service.used_by(session, block_key=block.key))


@blocks_router.get("", response_model=list[BlockOut])
def list_blocks(session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer"))) -> list[BlockOut]:
    return [_block_out(session, b.key) for b in block_service.list_blocks(session)]


@blocks_router.post("", response_model=BlockOut, status_code=201)
def create_block(body: BlockIn, session: Session = Depends(db_session),
                 who: Principal = Depends(require("editor"))) -> BlockOut:
    block = block_service.create_block(session, key=body.key, kind=body.kind, name=body.name, body=body.body,
                                       actor=who.actor)
    session.commit()
    return _block_out(session, block.key)


@blocks_router.get("/{key}", response_model=BlockOut)
def get_block(key: str, session: Session = Depends(db_read_session),
              _: Principal = Depends(require("viewer"))) -> BlockOut:
    return _block_out(session, key)


@blocks_router.patch("/{key}", response_model=BlockOut)
def update_block(key: str, body: BlockPatch, session: Session = Depends(db_session),
                 who: Principal = Depends(require("editor"))) -> BlockOut:
    block = block_service.update_block(session, block_id=key, actor=who.actor, name=body.name, body=body.body)
    session.commit()
    return _block_out(session, block.key)
