"""Test fixtures: a real database (SQLite or PostgreSQL, by TRATO_TEST_DB), migrated once per
test process and emptied after each test, the app in-process and, for real clients, on a port.

PostgreSQL that cannot be reached stops the run with an error: it is never skipped.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest

BACKEND = os.environ.get("TRATO_TEST_DB", "sqlite")

# In CI property tests replay the same examples every run, so a landing never depends on luck;
# on developers' machines they explore new ones (and keep failures in .hypothesis/).
hypothesis.settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    hypothesis.settings.load_profile("ci")
PG_ADMIN_URL = os.environ.get("TRATO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _postgres_database() -> str:
    import psycopg

    name = f"trato_test_{_worker()}_{os.getpid()}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.exit(f"PostgreSQL tests cannot run: {exc}".strip(), returncode=3)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def _drop_postgres_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if BACKEND == "postgresql":
        url = _postgres_database()
    elif BACKEND == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'trato.db'}"
    else:
        pytest.exit(f"TRATO_TEST_DB must be sqlite or postgresql, not {BACKEND!r}", returncode=4)
    os.environ["TRATO_DATABASE_URL"] = url
    os.environ["TRATO_SECRET_KEY"] = "test-secret-key-" + "x" * 32
    os.environ["TRATO_BASE_URL"] = "http://127.0.0.1:8000"
    # Chunks are prepared in the runner itself unless a test asks for the pool (tests/campaigns/test_ahead.py).
    os.environ.setdefault("TRATO_CAMPAIGN_PREPARE_PROCESSES", "0")
    from trato.core import db, migrate
    from trato.core.settings import get_settings

    get_settings.cache_clear()
    db.reset_engine()
    migrate.upgrade()
    yield url
    db.reset_engine()
    if BACKEND == "postgresql":
        _drop_postgres_database(url)


@pytest.fixture(scope="session")
def engine(database_url: str):  # type: ignore[no-untyped-def]
    from trato.core.db import get_engine

    return get_engine()


@pytest.fixture(autouse=True)
def _empty_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts from empty tables (only tests that touched the database pay for it)."""
    yield
    if "database_url" not in request.fixturenames:
        return
    from tests.database import empty_database

    empty_database()


@pytest.fixture
def session(database_url: str):  # type: ignore[no-untyped-def]
    from trato.core.db import new_session

    s = new_session()
    yield s
    s.rollback()
    s.close()


@pytest.fixture(scope="session")
def app(database_url: str):  # type: ignore[no-untyped-def]
    from trato.app import create_app

    return create_app()


@pytest.fixture(scope="session")
def _client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as client:
        client.event_hooks = {"request": [_fold_before_reading], "response": [_fold_after_tracking]}
        yield client


# The tracking API answers once calls are in the ingest inbox and folds them a moment later.
# Tests read right after sending, so the test client folds the inbox first: after each tracking
# call it sends, and before any other request (calls may have come from a real SDK on a port).
# Tests of the inbox itself use a client without these hooks (tests/ingest/test_inbox.py).
def _fold_before_reading(request) -> None:  # type: ignore[no-untyped-def]
    if not request.url.path.startswith("/v1/"):
        from trato.ingest import service

        service.drain()


def _fold_after_tracking(response) -> None:  # type: ignore[no-untyped-def]
    if response.request.url.path.startswith("/v1/"):
        from trato.ingest import service

        service.drain()


@pytest.fixture
def client(_client, database_url: str):  # type: ignore[no-untyped-def]
    _client.headers.clear()
    _client.cookies.clear()
    return _client


@pytest.fixture
def admin_token(database_url: str) -> str:
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        _, secret = service.create_token(s, name="test admin", role="admin", actor="test")
    return secret


@pytest.fixture
def api(client, admin_token: str):  # type: ignore[no-untyped-def]
    """The test client, signed in with an admin token."""
    client.headers["Authorization"] = f"Bearer {admin_token}"
    return client


@pytest.fixture
def write_key(database_url: str) -> str:
    from trato.core.db import unit_of_work
    from trato.ingest import service

    with unit_of_work() as s:
        _, key = service.create_source(s, name="website", actor="test", default_channel="web",
                                       default_department="sales")
    return key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app served by uvicorn on a loopback port, for real clients (SDKs, the browser)."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)



FIXTURES = Path(__file__).parent / "fixtures"


# -- the browser (one chromium per test process, shared by every domain's page tests) ---------

CHROMIUM = "/usr/bin/chromium"  # Debian's, never one downloaded by playwright
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium through playwright's sync API. Two sync_playwright instances cannot live in one
    process, so this is the only place that starts one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A fresh browser tab (own cookies) on the live server; fails the test on a script error or
    a Content-Security-Policy violation."""
    context = browser.new_context(base_url=live_server, locale="es-ES", viewport={"width": 1360, "height": 1000})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    # A 401 or 404 page is logged as a failed resource load: that is the page working, not a fault.
    tab.on("console", lambda message: problems.append(f"console: {message.text}")
           if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
    yield tab
    context.close()
    assert not problems, problems
