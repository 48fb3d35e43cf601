"""The compliance API: search with paging, one entry with its history, content downloads by role."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.archive.conftest import ANA, PDF, archive_one


def _token(role: str) -> str:
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        _, secret = service.create_token(s, name=f"test {role}", role=role, actor="test")
    return secret


@pytest.fixture
def archived(session):  # type: ignore[no-untyped-def]
    from trato.archive import service

    email = archive_one(session, message_id="m-email")
    sms = archive_one(session, channel="sms", recipient=ANA["phone"], message_id="m-sms")
    letter = archive_one(session, channel="letter", recipient="Calle Mayor 1, Madrid", parts={"pdf": PDF})
    push = archive_one(session, channel="push", recipient="device-1",
                       parts={"title": "Tu factura", "body": "Ya está", "image": b"\x89PNG"})
    other = archive_one(session, customer_id="cus_BRUNO", recipient="bruno@example.com", communication_id="com_X")
    service.record_status(session, message_id="m-email", status="delivered",
                          at=datetime(2026, 11, 2, 9, 31, tzinfo=UTC), provider_id="smtp-1")
    session.commit()
    return {"email": email, "sms": sms, "letter": letter, "push": push, "other": other}


def test_search_filters_and_pages(api, archived):
    page = api.get("/api/v1/archive", params={"customer_id": ANA["customer_id"], "limit": 3}).json()
    assert [i["channel"] for i in page["items"]] == ["push", "letter", "sms"]
    assert page["next_before"] == archived["sms"].sequence
    rest = api.get("/api/v1/archive", params={"customer_id": ANA["customer_id"], "limit": 3,
                                              "before": page["next_before"]}).json()
    assert [i["id"] for i in rest["items"]] == [archived["email"].id] and rest["next_before"] is None
    assert [i["id"] for i in api.get("/api/v1/archive?communication_id=com_X").json()["items"]] == [
        archived["other"].id]
    assert len(api.get("/api/v1/archive?channel=sms").json()["items"]) == 1
    assert api.get("/api/v1/archive", params={"since": "2099-01-01T00:00:00Z"}).json()["items"] == []


def test_bad_search_input_is_a_422(api, database_url):
    for params in ({"channel": "fax"}, {"since": "yesterday"}, {"before": "0"}, {"limit": "9999"}):
        response = api.get("/api/v1/archive", params=params)
        assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


def test_one_entry_with_decision_and_statuses(api, archived):
    body = api.get(f"/api/v1/archive/{archived['email'].id}").json()
    assert body["recipient"] == ANA["email"] and body["status"] == "delivered"
    assert body["decision"]["purpose"] == "transactional"
    assert [(s["status"], s["provider_id"]) for s in body["statuses"]] == [("delivered", "smtp-1")]
    missing = api.get("/api/v1/archive/arc_nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "archive_entry_not_found"


@pytest.mark.parametrize(("kind", "media_type", "extension", "expected"), [
    ("email", "text/html; charset=utf-8", "html", b'<html lang="es">'),
    ("sms", "text/plain; charset=utf-8", "txt", "Hola Ana, tu factura F-1 está lista.".encode()),
    ("letter", "application/pdf", "pdf", PDF),
    ("push", "application/json", "json", b'"body":"Ya est'),
])
def test_content_downloads_with_the_right_type(api, archived, kind, media_type, extension, expected):
    entry = archived[kind]
    response = api.get(f"/api/v1/archive/{entry.id}/content")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert response.headers["content-disposition"].endswith(f'.{extension}"')
    assert response.headers["x-content-sha256"] == entry.content_sha256
    assert response.headers["content-security-policy"].startswith("sandbox")
    assert expected in response.content if kind != "letter" else response.content == expected


def test_one_part_by_name_and_an_unknown_part(api, archived):
    entry = archived["email"]
    subject = api.get(f"/api/v1/archive/{entry.id}/content", params={"part": "subject"})
    assert subject.text == "Hola Ana (ver_1)" and subject.headers["content-type"].startswith("text/plain")
    unknown = api.get(f"/api/v1/archive/{entry.id}/content", params={"part": "attachment"})
    assert unknown.status_code == 404 and unknown.json()["error"]["details"]["parts"] == ["html", "subject", "text"]


def test_content_needs_the_editor_role_and_is_audited(client, archived):
    from trato.core.audit import AuditEntry
    from trato.core.db import new_session

    entry = archived["email"]
    client.headers["Authorization"] = f"Bearer {_token('viewer')}"
    assert client.get(f"/api/v1/archive/{entry.id}").status_code == 200
    refused = client.get(f"/api/v1/archive/{entry.id}/content")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "role_required"
    client.headers["Authorization"] = f"Bearer {_token('editor')}"
    assert client.get(f"/api/v1/archive/{entry.id}/content").status_code == 200
    with new_session(readonly=True) as s:
        row = s.query(AuditEntry).filter_by(action="archive.content_download").one()
    assert (row.actor, row.object_id, row.details) == ("token:test editor", entry.id, {"part": "html"})
    del client.headers["Authorization"]
    assert client.get("/api/v1/archive").status_code == 401


def test_erased_content_is_gone_not_an_error(api, archived):
    from trato.archive import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        service.erase_customer(s, customer_id=ANA["customer_id"], actor="test")
    response = api.get(f"/api/v1/archive/{archived['email'].id}/content")
    assert response.status_code == 410 and response.json()["error"]["code"] == "archive_content_erased"
    assert api.get(f"/api/v1/archive/{archived['email'].id}").json()["recipient"] is None
