"""The send API end to end: policy → render → archive → queue → sandbox provider → accepted."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("immediate_queue")


def test_a_send_reaches_the_provider_and_every_state_is_kept(api: Any, sandbox: Any, send_body: Any,
                                                            world: dict[str, str]) -> None:
    response = api.post("/api/v1/messages", json=send_body())
    assert response.status_code == 202, response.text
    sent = response.json()
    assert sent["state"] == "queued"
    assert sent["channel"] == "email"
    assert sent["decision"]["outcome"] == "send"
    assert [e["state"] for e in sent["events"]] == ["decided", "queued"]

    # The queue ran the delivery task after commit: the sandbox has exactly one copy.
    [record] = sandbox.find(sent["id"])
    assert record.message.recipient == "ana@example.com"
    assert "F-1" in str(record.message.parts["subject"])

    shown = api.get(f"/api/v1/messages/{sent['id']}").json()
    assert shown["state"] == "accepted"
    assert shown["provider"] == "sandbox"
    assert shown["provider_message_id"] == record.provider_message_id
    assert [e["state"] for e in shown["events"]] == ["decided", "queued", "sending", "accepted"]

    entry = api.get(f"/api/v1/archive/{sent['archive_entry_id']}").json()
    assert entry["customer_id"] == world["customer_id"]
    assert "accepted" in [s["status"] for s in entry["statuses"]]

    timeline = api.get(f"/api/v1/customers/{world['customer_id']}/timeline").json()
    states = {(e["properties"] or {}).get("state") for e in timeline["items"] if e["kind"] == "message_sent"}
    assert {"queued", "accepted"} <= states


@pytest.mark.parametrize("reference", [{"user_id": "u-1"}, {"email": "ANA@example.com"}, {"phone": "612 345 678"}])
def test_the_customer_can_be_named_by_an_identity(api: Any, sandbox: Any, send_body: Any, world: dict[str, str],
                                                  reference: dict[str, str]) -> None:
    response = api.post("/api/v1/messages", json=send_body(customer=reference, channels=["sms"]))
    assert response.status_code == 202, response.text
    assert response.json()["customer_id"] == world["customer_id"]
    [record] = sandbox.find(response.json()["id"])
    assert record.message.recipient == "+34612345678"


def test_marketing_without_consent_is_refused_with_the_reasons(api: Any, sandbox: Any, send_body: Any) -> None:
    response = api.post("/api/v1/messages", json=send_body(purpose="marketing"))
    assert response.status_code == 202, response.text
    refused = response.json()
    assert refused["state"] == "refused"
    assert refused["decision"]["outcome"] == "refuse"
    assert {r["channel"] for r in refused["decision"]["reasons"]} == {"email", "sms"}
    assert "policy refused" in refused["last_error"]
    assert refused["archive_entry_id"] is None
    assert sandbox.find(refused["id"]) == []


def test_a_capped_send_is_deferred_and_decided_again_at_its_time(api: Any, sandbox: Any, send_body: Any,
                                                                 immediate_queue: Any) -> None:
    from trato.core.db import unit_of_work
    from trato.delivery import service
    from trato.policy import service as policy

    with unit_of_work() as s:
        policy.create_cap(s, max_count=1, window_seconds=3600, purpose="transactional", actor="test")
    first = api.post("/api/v1/messages", json=send_body()).json()
    assert first["state"] == "queued"
    second = api.post("/api/v1/messages", json=send_body()).json()
    assert second["state"] == "deferred"
    assert second["not_before"] is not None
    assert second["decision"]["until"] is not None
    # The release is scheduled on the queue at that time, not run now.
    assert any(task.args == (second["id"],) for task in immediate_queue.scheduled())
    # When it runs and the cap still holds, the message stays deferred (a new schedule).
    assert service.release_deferred(second["id"]) == "deferred"
    assert sandbox.find(second["id"]) == []


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"customer": {"id": "cus_NOPE"}}, 404, "customer_not_found"),
    ({"customer": {"email": "nobody@example.com"}}, 404, "customer_not_found"),
    ({"customer": {}}, 422, "validation_error"),
    ({"customer": {"id": "x", "email": "y@example.com"}}, 422, "validation_error"),
    ({"communication": "no-such-thing"}, 404, "communication_not_found"),
    ({"channels": ["fax"]}, 422, "validation_error"),
    ({"purpose": "no-such-purpose"}, 422, None),
])
def test_bad_sends_get_a_stable_error_and_change_nothing(api: Any, sandbox: Any, send_body: Any,
                                                         body: dict[str, Any], status: int, code: str | None) -> None:
    response = api.post("/api/v1/messages", json=send_body(**body))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code or (code is None and error["code"])
    assert list(sandbox.sent) == []


def test_an_unapproved_communication_is_not_sent(api: Any, sandbox: Any, send_body: Any) -> None:
    from tests.content.factory import make_communication
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        make_communication(s, key="draft-only")
    response = api.post("/api/v1/messages", json=send_body(communication="draft-only"))
    assert response.status_code in (409, 422), response.text
    assert list(sandbox.sent) == []


def test_sending_needs_the_editor_role(client: Any, send_body: Any, database_url: str) -> None:
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        _, viewer = service.create_token(s, name="viewer", role="viewer", actor="test")
    client.headers["Authorization"] = f"Bearer {viewer}"
    assert client.post("/api/v1/messages", json=send_body()).status_code == 403
    assert client.get("/api/v1/messages/msg_NOPE").json()["error"]["code"] == "message_not_found"
