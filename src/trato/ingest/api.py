"""Segment's HTTP Tracking API, so Segment- and RudderStack-compatible SDKs work unchanged.

``POST /v1/identify|track|page|screen|group|alias|batch``; the write key is the HTTP Basic
user (or ``writeKey`` in the body); gzip bodies are accepted. Limits as Segment's: 32 KB per
event, 500 KB per request. A batch answers 200 with the events it rejected and why; a request
none of whose events could be taken answers 400.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from trato.console.auth import require
from trato.console.service import Principal
from trato.core.clock import utcnow
from trato.core.db import new_session
from trato.core.http import JSON, db_read_session, db_session
from trato.core.settings import get_settings
from trato.ingest import service
from trato.ingest.errors import (
    BatchTooLarge, EventTooLarge, InvalidEvent, InvalidJSON, MissingWriteKey, NothingAccepted,
)
from trato.ingest.schemas import SourceCreated, SourceIn, SourceOut
from trato.ingest.writer import writer

router = APIRouter(tags=["tracking"])
admin_router = APIRouter(prefix="/api/v1/sources", tags=["sources"])


async def _body(request: Request, limit: int, too_large: type[BatchTooLarge | EventTooLarge]) -> bytes:
    """The request body, gunzipped, refusing anything over ``limit`` (zip bombs included)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit * 4 + 1024:
            raise too_large(f"the request body is over {limit // 1024} KB", details={"limit": limit})
        chunks.append(chunk)
    raw = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise InvalidJSON("the body says Content-Encoding: gzip but is not valid gzip") from None
    if len(raw) > limit:
        advice = "send smaller batches" if too_large is BatchTooLarge else "send less in one event"
        raise too_large(f"the request body is over {limit // 1024} KB; {advice}", details={"limit": limit})
    return raw


def _write_key(request: Request, body: dict[str, Any]) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            user = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            user = ""
        if user:
            return user
    key = body.get("writeKey")
    if isinstance(key, str) and key:
        return key
    raise MissingWriteKey("send the source's write key as the HTTP Basic user name, or as 'writeKey'")


def _authenticate(write_key: str) -> Any:
    with new_session(readonly=True) as session:
        return service.authenticate(session, write_key)


async def _track(request: Request, call_type: str | None) -> Response:
    settings = get_settings()
    received_at = utcnow()
    limit = settings.ingest_max_batch_bytes if call_type is None else settings.ingest_max_event_bytes
    raw = await _body(
        request, max(limit, settings.ingest_max_event_bytes), BatchTooLarge if call_type is None else EventTooLarge
    )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidJSON("the body must be a JSON object")
    # No session per request: the key is nearly always cached, and the writer has its own.
    write_key = _write_key(request, body)
    source = service.cached_source(write_key) or await run_in_threadpool(_authenticate, write_key)
    if call_type is None:
        calls = body.get("batch")
        if not isinstance(calls, list):
            raise InvalidEvent("a batch needs a 'batch' list of calls", details={"field": "batch"})
        context = body.get("context") if isinstance(body.get("context"), dict) else None
        good, rejected = service.parse_calls(
            calls, call_type=None, received_at=received_at, sent_at=body.get("sentAt"), batch_context=context
        )
    else:
        calls = [body]
        good, rejected = service.parse_calls(calls, call_type=call_type, received_at=received_at)
    if not good:
        if len(calls) == 1 and rejected:
            first = rejected[0]
            return JSON({"error": {"code": first["code"], "message": first["message"], "details": first}}, 400)
        raise NothingAccepted(
            "no event in the request could be accepted" if calls else "the batch is empty",
            details={"rejected": rejected},
        )
    result = await writer.submit(source, good, received_at)
    result.rejected = rejected
    return JSON(result.as_response())


@router.post("/v1/batch")
async def batch(request: Request) -> Response:
    return await _track(request, None)


# analytics.js posts to one-letter paths (/v1/t, /v1/p, ... and /v1/b for batches), as Segment accepts.
router.add_api_route("/v1/b", batch, methods=["POST"], name="batch_short", include_in_schema=False)


def _single(call_type: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return await _track(request, call_type)

    endpoint.__name__ = call_type
    endpoint.__doc__ = f"Segment's {call_type} call."
    return endpoint


for _call in ("identify", "track", "page", "screen", "group", "alias"):
    router.add_api_route(f"/v1/{_call}", _single(_call), methods=["POST"], name=_call)
    router.add_api_route(
        f"/v1/{_call[0]}", _single(_call), methods=["POST"], name=f"{_call}_short", include_in_schema=False
    )


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
