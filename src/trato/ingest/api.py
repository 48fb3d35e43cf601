"""Segment's HTTP Tracking API, so Segment- and RudderStack-compatible SDKs work unchanged, and
the management of sources and the ingest inbox's status.

``POST /v1/identify|track|page|screen|group|alias|batch``; the write key is the HTTP Basic
user (or ``writeKey`` in the body); gzip bodies are accepted. Limits as Segment's: 32 KB per
event, 500 KB per request. A batch answers 200 with the events it rejected and why; a request
none of whose events could be taken answers 400. A 200 means the calls are stored in the inbox;
they reach the customer memory when the folder has folded them (``GET /api/v1/ingest/status``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from trato.console.auth import require
from trato.console.service import Principal
from trato.core.http import JSON, db_read_session, db_session
from trato.ingest import edge, inbox, service
from trato.ingest.schemas import InboxStatusOut, SourceCreated, SourceIn, SourceOut

router = APIRouter(tags=["tracking"])
admin_router = APIRouter(prefix="/api/v1/sources", tags=["sources"])
status_router = APIRouter(prefix="/api/v1/ingest", tags=["sources"])

# In the app, edge.TrackingEdge answers these paths before routing; the routes document them in
# the OpenAPI document and run the same code.


async def _track(request: Request, call_type: str | None) -> Response:
    limit, kind = edge.read_limit(call_type)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit * 4 + 1024:
            raise kind(f"the request body is over {limit // 1024} KB", details={"limit": limit})
        chunks.append(chunk)
    status, answer = await edge.accept(
        call_type, b"".join(chunks), request.headers.get("authorization", ""),
        request.headers.get("content-encoding", ""),
    )
    return JSON(answer, status)


@router.post("/v1/batch")
async def batch(request: Request) -> Response:
    return await _track(request, None)


router.add_api_route("/v1/b", batch, methods=["POST"], name="batch_short", include_in_schema=False)


def _single(call_type: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return await _track(request, call_type)

    endpoint.__name__ = call_type
    endpoint.__doc__ = f"Segment's {call_type} call."
    return endpoint


for _call in edge.CALLS:
    router.add_api_route(f"/v1/{_call}", _single(_call), methods=["POST"], name=_call)
    router.add_api_route(
        f"/v1/{_call[0]}", _single(_call), methods=["POST"], name=f"{_call}_short", include_in_schema=False
    )


@status_router.get("/status", response_model=InboxStatusOut)
def get_ingest_status(_: Principal = Depends(require("viewer"))) -> InboxStatusOut:
    """Accepted tracking calls not yet folded into the customer memory, and how old the oldest is."""
    return InboxStatusOut(**inbox.status().as_dict())


@admin_router.get("", response_model=list[SourceOut])
def get_sources(session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer"))) -> list[SourceOut]:
    return [SourceOut.of(s) for s in service.list_sources(session)]


@admin_router.post("", response_model=SourceCreated, status_code=201)
def post_source(
    body: SourceIn, session: Session = Depends(db_session), who: Principal = Depends(require("admin"))
) -> SourceCreated:
    source, key = service.create_source(
        session, name=body.name, actor=who.actor, default_channel=body.default_channel,
        default_department=body.default_department,
    )
    session.commit()
    return SourceCreated(source=SourceOut.of(source), write_key=key)
