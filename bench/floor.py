"""The framework floor: the same uvicorn and FastAPI answering tracking calls, storing nothing.

``/v1/batch``, ``/v1/track``: a FastAPI route that reads and decodes the body and answers as the
tracking API does. ``/dep/v1/...``: the same route with a sync generator dependency, which
FastAPI enters and leaves in its thread pool. ``/raw/v1/...``: a bare ASGI callable in front of
FastAPI (uvicorn and httptools only). Served by ``bench/ingest.py --serve-floor``.
"""

from collections.abc import Iterator
from typing import Any

import orjson
import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response


def _accepted(body: bytes) -> int:
    data = orjson.loads(body)
    return len(data["batch"]) if "batch" in data else 1


def _answer(accepted: int) -> bytes:
    return orjson.dumps({"success": True, "accepted": accepted})


def _resource() -> Iterator[None]:
    yield None


async def plain(request: Request) -> Response:
    return Response(_answer(_accepted(await request.body())), media_type="application/json")


async def with_dependency(request: Request, _: None = Depends(_resource)) -> Response:
    return Response(_answer(_accepted(await request.body())), media_type="application/json")


async def healthz() -> Response:
    return Response(_answer(0), media_type="application/json")


def create_app() -> Any:
    api = FastAPI()
    api.add_api_route("/healthz", healthz, methods=["GET"])
    for path in ("/v1/batch", "/v1/track"):
        api.add_api_route(path, plain, methods=["POST"])
        api.add_api_route("/dep" + path, with_dependency, methods=["POST"])

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/raw/"):
            await api(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        payload = _answer(_accepted(b"".join(chunks)))
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    return app


def serve(host: str, port: int) -> None:
    """Serve the floor with the same uvicorn settings as ``trato serve``."""
    uvicorn.run("floor:create_app", factory=True, host=host, port=port, log_level="warning",
                http="httptools", loop="uvloop", access_log=False)
