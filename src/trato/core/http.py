"""HTTP plumbing shared by every domain's routes: sessions, JSON, and the one error mapping.

Every error leaves as ``{"error": {"code", "message", "details"}}`` with a stable code; an
unexpected exception is logged and answered as ``internal_error`` without its text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from trato.core.db import new_session
from trato.core.errors import TratoError

log = structlog.get_logger("trato.http")

HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
}


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def error_response(status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None) -> JSON:
    return JSON({"error": {"code": code, "message": message, "details": details}}, status_code=status, headers=headers)


def db_session() -> Iterator[Session]:
    """A session for a request that writes; the route commits its unit of work itself."""
    session = new_session()
    try:
        yield session
    finally:
        session.close()


def db_read_session() -> Iterator[Session]:
    session = new_session(readonly=True)
    try:
        yield session
    finally:
        session.close()


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TratoError)
    async def _trato(request: Request, exc: TratoError) -> Response:
        headers = None
        if exc.status_code == 401:  # the tracking API takes the write key as HTTP Basic user
            scheme = 'Basic realm="trato"' if request.url.path.startswith("/v1/") else "Bearer"
            headers = {"WWW-Authenticate": scheme}
        return error_response(exc.status_code, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"), "message": err.get("msg")}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems[:5])
        return error_response(422, "validation_error", f"the request is not valid: {summary}", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = f"there is nothing at {request.url.path}"
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> Response:
        # The database refused a value from the request (PostgreSQL: NUL in text, a string over a
        # column's width): the input's fault, so a 4xx. Logged in full, as the check belongs earlier.
        log.error("the database refused a value", path=request.url.path, method=request.method, error=str(exc.orig))
        return error_response(
            422, "unstorable_value",
            "a value in the request cannot be stored: text must not contain NUL characters "
            "and must fit its field",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error", path=request.url.path, method=request.method)
        return error_response(500, "internal_error", "trato failed to handle this request; it has been logged")
