"""The ingest inbox: a 200 means the calls are stored; the folder moves them into the customer
memory later, exactly once, and nothing accepted is lost when it stops or the server dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from tests.conftest import BACKEND, _free_port
from tests.ingest.tracking import Memory, Tracking, basic_auth


@pytest.fixture
def unfolded(client: Any, write_key: str) -> Iterator[Tracking]:
    """Tracking calls through a client that does not fold after sending, with the folder stopped."""
    from trato.ingest.folder import folder

    hooks = client.event_hooks
    folder.stop()
    client.event_hooks = {"request": [], "response": []}
    try:
        yield Tracking(client, write_key)
    finally:
        client.event_hooks = hooks
        folder.start()


def inbox_rows() -> list[dict[str, Any]]:
    from trato.ingest import inbox

    with inbox.engine().connect() as connection:
        return [dict(r._mapping) for r in connection.execute(select(inbox.inbox_table).order_by(inbox.inbox_table.c.id))]


def stored_events(message_id: str | None = None) -> int:
    from trato.core.db import new_session
    from trato.customers.models import Event

    query = select(func.count()).select_from(Event)
    if message_id is not None:
        query = query.where(Event.message_id == message_id)
    with new_session(readonly=True) as session:
        return int(session.scalar(query) or 0)


def track(message_id: str | None, user: str = "u-1", **extra: Any) -> dict[str, Any]:
    call = {"userId": user, "event": "Viewed", **extra}
    if message_id is not None:
        call["messageId"] = message_id
    return call


def test_accepted_calls_wait_in_the_inbox_until_they_are_folded(unfolded: Tracking, memory: Memory) -> None:
    from trato.ingest import service

    unfolded.send("track", track("m-1"))
    unfolded.send("batch", {"batch": [{"type": "track", **track("m-2")}, {"type": "identify", "userId": "u-1",
                                                                          "traits": {"email": "ana@example.com"}}]})
    assert stored_events() == 0
    assert [(r["call_type"], r["events"]) for r in inbox_rows()] == [("track", 1), (None, 2)]
    memory.missing(email="ana@example.com")
    assert service.drain() == 3
    assert stored_events() == 3 and inbox_rows() == []
    assert memory.lookup(email="ana@example.com")["customer"]["computed"]["event_count"] == 3


def test_status_shows_the_lag_and_the_folder_catches_up(unfolded: Tracking, client: Any, admin_token: str) -> None:
    from trato.ingest import service
    from trato.ingest.folder import folder

    for n in range(3):
        unfolded.send("track", track(f"m-{n}"))
    headers = {"Authorization": f"Bearer {admin_token}"}
    status = client.get("/api/v1/ingest/status", headers=headers).json()
    assert status["backlog_requests"] == 3 and status["backlog_events"] == 3, status
    assert status["oldest_age_seconds"] >= 0 and status["oldest_received_at"], status
    ready = client.get("/readyz").json()
    assert ready["details"]["ingest"]["backlog_events"] == 3, ready
    assert stored_events() == 0
    folder.start()  # as after a restart
    service.drain()
    assert stored_events() == 3 and inbox_rows() == []
    assert client.get("/api/v1/ingest/status", headers=headers).json()["backlog_events"] == 0


def test_a_server_killed_after_answering_loses_nothing(database_url: str, write_key: str, unfolded: Tracking) -> None:
    """A real `trato serve --no-folder` answers, is killed with SIGKILL; the calls are folded later
    (by this process, whose own folder is stopped meanwhile)."""
    from trato.ingest import service

    port = _free_port()
    env = {**os.environ, "TRATO_DATABASE_URL": database_url, "TRATO_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "trato", "serve", "--no-worker", "--no-folder", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read() if server.stderr else ""
            time.sleep(0.05)
        calls = [{"type": "track", **track(f"k-{n}")} for n in range(5)]
        response = httpx.post(f"{url}/v1/batch", json={"batch": calls}, headers=basic_auth(write_key))
        assert response.status_code == 200 and response.json() == {"success": True, "accepted": 5}, response.text
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(10)
    assert stored_events() == 0 and len(inbox_rows()) == 1
    assert service.drain() == 5
    assert stored_events() == 5


def test_folding_the_same_request_twice_stores_it_once(unfolded: Tracking, memory: Memory) -> None:
    """A crash after a fold committed its events but before the inbox row went: folded again, no change."""
    from trato.ingest import inbox, service

    unfolded.send("batch", {"batch": [
        {"type": "track", **track("twice", properties={"revenue": 10})},
        {"type": "identify", "userId": "u-1", "traits": {"plan": "gold"}},  # no messageId: one is given
    ]})
    (row,) = inbox_rows()
    service.drain()
    with inbox.engine().begin() as connection:
        inbox.append(connection, [inbox.Accepted(row["source_id"], row["received_at"], row["call_type"], row["body"],
                                                 row["events"])])
    assert service.drain() == 2
    assert stored_events() == 2 and stored_events("twice") == 1
    computed = memory.customer(memory.lookup(user_id="u-1")["customer"]["id"])["customer"]["computed"]
    assert computed["event_count"] == 2, computed


def test_the_inbox_keeps_neither_rejected_calls_nor_write_keys(unfolded: Tracking, write_key: str) -> None:
    response = unfolded.post("batch", {"writeKey": write_key, "batch": [
        {"type": "track", **track("good")}, {"type": "track", "messageId": "bad"},
    ]}, write_key="")
    assert response.status_code == 200 and response.json()["accepted"] == 1, response.text
    unfolded.send("track", {**track(None), "writeKey": write_key}, write_key="")
    rows = inbox_rows()
    assert [r["events"] for r in rows] == [1, 1]
    assert all(write_key not in r["body"] for r in rows)
    assert '"bad"' not in rows[0]["body"] and '"messageId"' in rows[1]["body"]


def test_a_request_that_cannot_be_folded_is_kept_aside(unfolded: Tracking, api: Any) -> None:
    from trato.ingest import inbox, service

    unfolded.send("track", track("before"))
    (row,) = inbox_rows()
    with inbox.engine().begin() as connection:
        inbox.append(connection, [inbox.Accepted(row["source_id"], row["received_at"], None, "{not json", 1)])
    unfolded.send("track", track("after"))
    service.drain()
    assert stored_events("before") == 1 and stored_events("after") == 1
    (kept,) = inbox_rows()
    assert kept["body"] == "{not json" and kept["error"], kept
    status = api.get("/api/v1/ingest/status").json()
    assert status["failed_requests"] == 1 and status["backlog_events"] == 0, status


def test_concurrent_folders_fold_every_call_exactly_once(unfolded: Tracking, api: Any) -> None:
    """Several folders (as in several `trato serve` processes) over one backlog from two sources."""
    from trato.ingest import inbox

    crm = api.post("/api/v1/sources", json={"name": "crm"}).json()["write_key"]
    other = Tracking(unfolded.client, crm)
    for n in range(20):
        unfolded.send("batch", {"batch": [{"type": "track", **track(f"w-{n}-{i}", user=f"u-{i}")} for i in range(5)]})
        other.send("track", track(f"c-{n}", user=f"u-{n % 5}"))
    errors: list[BaseException] = []

    def fold() -> None:
        try:
            while inbox.fold_once(max_events=15):
                pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fold) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    inbox.drain()
    assert not errors, errors
    assert stored_events() == 120 and inbox_rows() == []
    from trato.core.db import new_session

    with new_session(readonly=True) as session:
        counted = session.execute(text("SELECT sum(event_count) FROM customers")).scalar()
    assert counted == 120


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite folders lease rows; PostgreSQL's hold advisory locks")
def test_rows_leased_by_a_folder_that_died_are_folded_once_the_lease_ends(unfolded: Tracking) -> None:
    from sqlalchemy import update

    from trato.ingest import inbox

    unfolded.send("track", track("leased"))
    with inbox.engine().begin() as connection:
        connection.execute(update(inbox.inbox_table).values(leased_until=time.time() + 60))
    assert inbox.fold_once() == 0  # another folder holds it
    with inbox.engine().begin() as connection:
        connection.execute(update(inbox.inbox_table).values(leased_until=time.time() - 1))
    assert inbox.fold_once() == 1
    assert stored_events("leased") == 1 and inbox_rows() == []


def test_a_sources_calls_are_folded_in_arrival_order(unfolded: Tracking, api: Any) -> None:
    from trato.core.db import new_session
    from trato.customers.models import Event
    from trato.ingest import inbox

    crm = Tracking(unfolded.client, api.post("/api/v1/sources", json={"name": "crm"}).json()["write_key"])
    sent: list[str] = []
    for n in range(12):
        sender, message_id = (unfolded, f"web-{n}") if n % 3 else (crm, f"crm-{n}")
        sender.send("track", track(message_id, user=f"u-{n % 4}"))
        sent.append(message_id)
    while inbox.fold_once(max_events=2):  # many small folds
        pass
    with new_session(readonly=True) as session:
        stored = list(session.scalars(select(Event.message_id).order_by(Event.id)))
    for prefix in ("web-", "crm-"):
        assert [m for m in stored if m.startswith(prefix)] == [m for m in sent if m.startswith(prefix)]


def test_the_served_app_answers_tracking_calls_before_the_frameworks_middleware(
    database_url: str, write_key: str
) -> None:
    """`trato serve` runs create_server(): the same answers as the app's own routes."""
    from fastapi.testclient import TestClient

    from trato.app import create_server
    from trato.ingest import service

    served = TestClient(create_server(), raise_server_exceptions=False)  # no lifespan: the suite's app runs it
    sent = served.post("/v1/track", json=track("served"), headers=basic_auth(write_key))
    assert sent.status_code == 200 and sent.json() == {"success": True, "accepted": 1}, sent.text
    refused = served.post("/v1/track", json=track("x"), headers=basic_auth("wk_wrong"))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_write_key"
    assert refused.headers["www-authenticate"] == 'Basic realm="trato"'
    assert served.get("/v1/track").json()["error"]["code"] == "method_not_allowed"
    assert served.post("/v1/nothing", json={}).json()["error"]["code"] == "not_found"
    preflight = served.options("/v1/batch", headers={"Origin": "https://shop.example",
                                                     "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "*"
    assert served.get("/healthz").json() == {"status": "ok"}
    service.drain()
    assert stored_events("served") == 1
