"""The ASGI application: every domain's routes and pages, one error mapping, health checks."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

from trato import __version__
from trato.console import api as console_api
from trato.console import pages as console_pages
from trato.core.db import get_engine
from trato.core.http import JSON, error_response, install_error_handlers
from trato.core.logging import configure_logging
from trato.core.settings import get_settings
from trato.content import api as content_api
from trato.content import pages as content_pages
from trato.customers import api as customers_api
from trato.customers import pages as customers_pages
from trato.ingest import api as ingest_api
from trato.ingest.cors import TrackingCORS
from trato.ingest.writer import writer


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    writer.start()
    consumer = None
    if os.environ.get("TRATO_IN_PROCESS_WORKER") == "1":
        from trato.core.queue import start_embedded_worker

        consumer = start_embedded_worker()
    try:
        yield
    finally:
        if consumer is not None:
            consumer.stop(graceful=True)
        writer.stop()


def create_app() -> FastAPI:
    settings = get_settings()
    settings.resolved_secret_key()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="trato",
        version=__version__,
        description="Customer memory, tracking API and management API of trato.",
        default_response_class=JSON,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(TrackingCORS)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSON:
        try:
            with get_engine().connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return error_response(503, "database_unreachable", "the database does not answer")
        return JSON({"status": "ready"})

    app.include_router(ingest_api.router)
    app.include_router(ingest_api.admin_router)
    app.include_router(customers_api.router)
    app.include_router(console_api.router)
    app.include_router(content_api.router)
    app.include_router(content_api.blocks_router)
    console_pages.mount(app)
    app.include_router(customers_pages.router)
    content_pages.mount(app)
    return app
