"""The tracking API's edge: ``POST /v1/*`` answered by a bare ASGI handler before FastAPI routes.

A tracking call costs the edge its validation and one append to the inbox, nothing else: no
routing, dependency injection or pydantic per call (FastAPI's own work was about a quarter of a
single call's cost). The FastAPI routes in :mod:`trato.ingest.api` stay for the OpenAPI document
and run the same :func:`accept`. CORS applies to ``/v1/*`` only: browsers send events from the
company's own sites; the management API and the console stay same-origin.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import orjson
import structlog
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from trato.core.clock import utcnow
from trato.core.db import new_session
from trato.core.errors import TratoError
from trato.core.settings import get_settings
from trato.ingest import inbox, service
from trato.ingest.errors import BatchTooLarge, EventTooLarge, InvalidJSON, MissingWriteKey, NothingAccepted
from trato.ingest.writer import writer

log = structlog.get_logger("trato.ingest")
CALLS = ("identify", "track", "page", "screen", "group", "alias")
# analytics.js posts to one-letter paths (/v1/t, /v1/p, ... and /v1/b for batches), as Segment accepts.
PATHS: dict[str, str | None] = {"/v1/batch": None, "/v1/b": None}
for _call in CALLS:
    PATHS[f"/v1/{_call}"] = PATHS[f"/v1/{_call[0]}"] = _call


def read_limit(call_type: str | None) -> tuple[int, type[BatchTooLarge] | type[EventTooLarge]]:
    settings = get_settings()
    if call_type is None:
        return max(settings.ingest_max_batch_bytes, settings.ingest_max_event_bytes), BatchTooLarge
    return settings.ingest_max_event_bytes, EventTooLarge


def too_large(kind: type[BatchTooLarge] | type[EventTooLarge], limit: int) -> TratoError:
    advice = "send smaller batches" if kind is BatchTooLarge else "send less in one event"
    return kind(f"the request body is over {limit // 1024} KB; {advice}", details={"limit": limit})


def inflate(raw: bytes, content_encoding: str, call_type: str | None) -> bytes:
    """The body gunzipped when it says so, refusing anything over the limit (zip bombs included)."""
    limit, kind = read_limit(call_type)
    if content_encoding.lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise InvalidJSON("the body says Content-Encoding: gzip but is not valid gzip") from None
    if len(raw) > limit:
        raise too_large(kind, limit)
    return raw


def write_key_of(authorization: str, body: dict[str, Any]) -> str:
    scheme, _, value = authorization.partition(" ")
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


async def accept(call_type: str | None, raw: bytes, authorization: str, content_encoding: str) -> tuple[int, Any]:
    """Validate one tracking request and append what it holds to the inbox: (status, JSON body).

    Raises a TratoError for a request refused whole (key, JSON, size).
    """
    received_at = utcnow()
    raw = inflate(raw, content_encoding, call_type)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidJSON("the body must be a JSON object")
    write_key = write_key_of(authorization, body)
    source = service.cached_source(write_key) or await run_in_threadpool(_authenticate, write_key)
    calls, good, rejected = service.parse_request(body, call_type=call_type, received_at=received_at)
    if not good:
        if len(calls) == 1 and rejected:
            first = rejected[0]
            return 400, {"error": {"code": first["code"], "message": first["message"], "details": first}}
        raise NothingAccepted(
            "no event in the request could be accepted" if calls else "the batch is empty",
            details={"rejected": rejected},
        )
    await writer.submit(inbox.Accepted(
        source_id=source.id, received_at=received_at, call_type=call_type,
        body=_inbox_body(raw, body, calls, good, rejected, call_type), events=len(good),
    ))
    answer: dict[str, Any] = {"success": not rejected, "accepted": len(good)}
    if rejected:
        answer["rejected"] = rejected
    return 200, answer


def _inbox_body(
    raw: bytes, body: dict[str, Any], calls: list[Any], good: list[tuple[int, Any]], rejected: list[Any],
    call_type: str | None,
) -> str:
    """What the inbox keeps: the body as received when all of it was accepted and every call has
    its messageId (what Segment's libraries send); else the accepted calls, each given the
    messageId it was accepted under, so that folding it again cannot store it twice. A write
    key sent in the body is never kept."""
    missing_ids = [(index, event) for index, event in good if calls[index].get("messageId") in (None, "")]
    if not rejected and not missing_ids and "writeKey" not in body:
        return raw.decode()
    for index, event in missing_ids:
        calls[index]["messageId"] = event.message_id
    if call_type is not None:
        return orjson.dumps({k: v for k, v in calls[0].items() if k != "writeKey"}).decode()
    kept: dict[str, Any] = {"batch": [calls[index] for index, _ in good]}
    for key in ("sentAt", "context"):
        if key in body:
            kept[key] = body[key]
    return orjson.dumps(kept).decode()


# -- the ASGI edge -----------------------------------------------------------------------------


def error_body(exc: TratoError) -> dict[str, Any]:
    return {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}


class TrackingEdge:
    """ASGI middleware: tracking calls here, everything else (and other /v1 methods) to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            self._tracking,
            allow_origins=["*"],
            allow_methods=["POST", "OPTIONS"],
            allow_headers=["authorization", "content-type", "content-encoding"],
            max_age=86400,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _tracking(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["method"] != "POST" or path not in PATHS:
            await self.app(scope, receive, send)
            return
        call_type = PATHS[path]
        authorization = content_encoding = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-encoding":
                content_encoding = value.decode("latin-1")
        extra: list[tuple[bytes, bytes]] = []
        try:
            raw = await _read(receive, call_type)
            status, answer = await accept(call_type, raw, authorization, content_encoding)
        except TratoError as exc:
            status, answer = exc.status_code, error_body(exc)
            if status == 401:
                extra.append((b"www-authenticate", b'Basic realm="trato"'))
        except Exception:
            log.exception("unexpected error", path=path, method="POST")
            status, answer = 500, {"error": {"code": "internal_error", "message":
                                             "trato failed to handle this request; it has been logged",
                                             "details": None}}
        data = orjson.dumps(answer)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *extra,
        ]})
        await send({"type": "http.response.body", "body": data})


async def _read(receive: Receive, call_type: str | None) -> bytes:
    """The raw body, refused early when even a gzip body could not be under the limit."""
    limit, kind = read_limit(call_type)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidJSON("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit * 4 + 1024:
            raise kind(f"the request body is over {limit // 1024} KB", details={"limit": limit})
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
