"""The ASGI application: every domain's routes and pages, one error mapping, health checks."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

from trato import __version__
from trato.archive import api as archive_api
from trato.audiences import api as audiences_api
from trato.audiences import pages as audiences_pages
from trato.campaigns import api as campaigns_api
from trato.campaigns import pages as campaigns_pages
from trato.delivery import api as delivery_api
from trato.delivery import callbacks as delivery_callbacks
from trato.delivery.channels import registry as delivery_registry
from trato.archive import pages as archive_pages
from trato.delivery import letter_pages
from trato.delivery import pages as delivery_pages
from trato.archive import service as archive_service
from trato.console import api as console_api
from trato.console import pages as console_pages
from trato.core.db import new_session
from trato.core.http import JSON, error_response, install_error_handlers
from trato.core.logging import configure_logging
from trato.core.settings import get_settings
from trato.content import api as content_api
from trato.content import pages as content_pages
from trato.content import service as content_service
from trato.customers import api as customers_api
from trato.customers import pages as customers_pages
from trato.ingest import api as ingest_api
from trato.ingest import inbox
from trato.ingest.edge import TrackingEdge
from trato.ingest.folder import folder
from trato.ingest.writer import writer
from trato.policy import api as policy_api
from trato.policy import pages as policy_pages
from trato.policy import preference_center


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    writer.start()
    if get_settings().ingest_folder:
        writer.after_commit = folder.wake
        folder.start()
    consumer = None
    if os.environ.get("TRATO_IN_PROCESS_WORKER") == "1":
        from trato.core.queue import start_embedded_worker

        consumer = start_embedded_worker()
    try:
        yield
    finally:
        if consumer is not None:
            consumer.stop(graceful=True)
        await writer.aclose()
        writer.stop()
        folder.stop()


def create_server() -> TrackingEdge:
    """What ``trato serve`` runs: tracking calls answered before the app's middleware (FastAPI's
    telemetry check, error middleware) is entered; everything else, lifespan included, by the app."""
    return TrackingEdge(create_app(tracking_edge=False))


def connect_domains() -> None:
    """Hooks between domains that must not import each other at module level: the archive
    re-renders messages kept as their render context through the content domain."""
    if not archive_service.has_reproducer():
        archive_service.register_reproducer(content_service.reproduce)


def create_app(*, tracking_edge: bool = True) -> FastAPI:
    settings = get_settings()
    settings.resolved_secret_key()
    configure_logging(settings.log_level)
    delivery_registry.check_configuration()  # a bad TRATO_*_URL stops start-up naming it
    connect_domains()
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
    if tracking_edge:
        app.add_middleware(TrackingEdge)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSON:
        """Ready when the database answers; details say how far the ingest folder lags."""
        try:
            with new_session(readonly=True) as session:
                session.execute(text("SELECT 1"))
            lag = inbox.status().as_dict()
        except Exception:
            return error_response(503, "database_unreachable", "the database does not answer")
        return JSON({"status": "ready", "details": {"ingest": lag}})

    app.include_router(ingest_api.router)
    app.include_router(ingest_api.admin_router)
    app.include_router(ingest_api.status_router)
    app.include_router(customers_api.router)
    app.include_router(console_api.router)
    app.include_router(policy_api.router)
    app.include_router(policy_api.privacy_router)
    app.include_router(content_api.router)
    app.include_router(content_api.blocks_router)
    app.include_router(archive_api.router)
    app.include_router(delivery_api.router)
    app.include_router(delivery_api.push_router)
    app.include_router(delivery_api.providers_router)
    app.include_router(delivery_callbacks.router)
    app.include_router(preference_center.router)
    console_pages.mount(app)
    app.include_router(customers_pages.router)
    app.include_router(policy_pages.router)
    content_pages.mount(app)
    app.include_router(archive_pages.router)
    app.include_router(archive_pages.content_router)
    app.include_router(delivery_pages.router)
    app.include_router(letter_pages.router)
    app.include_router(audiences_api.router)
    app.include_router(audiences_pages.router)
    app.include_router(delivery_pages.providers_router)
    app.include_router(delivery_pages.sandbox_router)
    app.include_router(campaigns_api.router)
    app.include_router(campaigns_api.tracking_router)
    app.include_router(campaigns_api.short_link_router)
    app.include_router(campaigns_pages.router)
    return app
