"""What people settle: dead letters listed and queued again, possibly sent messages resolved or
resent, deferred messages sent once the policy allows them."""

from __future__ import annotations

from typing import Any

import pytest

from trato.delivery.channels.base import ProviderResult

pytestmark = pytest.mark.usefixtures("immediate_queue")


def test_dead_letters_are_listed_and_can_be_queued_again(api: Any, sandbox: Any, send_body: Any) -> None:
    from trato.delivery import service

    sandbox.fail_next(ProviderResult.refused("connection refused"), times=service.MAX_ATTEMPTS)
    # E-mail alone: with a second channel allowed the message would fail over to it instead.
    message_id = api.post("/api/v1/messages", json=send_body(channels=["email"])).json()["id"]
    for _ in range(service.MAX_ATTEMPTS - 1):
        service.deliver(message_id)
    dead = api.get("/api/v1/messages", params={"state": "dead"}).json()
    assert [m["id"] for m in dead] == [message_id]

    requeued = api.post(f"/api/v1/messages/{message_id}/requeue")
    assert requeued.status_code == 200, requeued.text
    shown = api.get(f"/api/v1/messages/{message_id}").json()
    assert shown["state"] == "accepted"
    assert shown["attempts"] == 1
    assert shown["events"][-3]["details"]["previous"] == "dead"
    assert len(sandbox.find(message_id)) == 1
    assert api.get("/api/v1/messages", params={"state": "dead"}).json() == []
    # An accepted message is not sent again.
    again = api.post(f"/api/v1/messages/{message_id}/requeue")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "message_state_conflict")


def test_a_possibly_sent_message_is_resolved_by_a_person_not_resent(api: Any, sandbox: Any, send_body: Any) -> None:
    sandbox.fail_next(ProviderResult.ambiguous("timed out after DATA"))
    message_id = api.post("/api/v1/messages", json=send_body()).json()["id"]
    assert [m["id"] for m in api.get("/api/v1/messages", params={"state": "possibly_sent"}).json()] == [message_id]
    resolved = api.post(f"/api/v1/messages/{message_id}/resolve", json={"note": "seen in the provider's log"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["state"] == "accepted"
    assert resolved.json()["events"][-1]["details"]["note"] == "seen in the provider's log"
    assert sandbox.find(message_id) == []
    assert api.post(f"/api/v1/messages/{message_id}/resolve", json={}).status_code == 409


def test_a_possibly_sent_message_can_be_resent_on_purpose(api: Any, sandbox: Any, send_body: Any) -> None:
    sandbox.fail_next(ProviderResult.ambiguous("connection dropped"))
    message_id = api.post("/api/v1/messages", json=send_body()).json()["id"]
    assert api.post(f"/api/v1/messages/{message_id}/requeue").json()["state"] == "queued"
    assert api.get(f"/api/v1/messages/{message_id}").json()["state"] == "accepted"
    assert len(sandbox.find(message_id)) == 1


def test_a_deferred_message_is_sent_when_its_time_comes_and_the_policy_allows_it(
        api: Any, sandbox: Any, send_body: Any) -> None:
    from trato.core.db import unit_of_work
    from trato.delivery import service
    from trato.policy import service as policy

    with unit_of_work() as s:
        cap = policy.create_cap(s, max_count=1, window_seconds=3600, purpose="transactional", actor="test")
    api.post("/api/v1/messages", json=send_body())
    deferred = api.post("/api/v1/messages", json=send_body()).json()
    assert deferred["state"] == "deferred"
    with unit_of_work() as s:
        policy.delete_cap(s, cap_id=cap.id, actor="test")
    assert service.release_deferred(deferred["id"]) == "queued"
    shown = api.get(f"/api/v1/messages/{deferred['id']}").json()
    assert shown["state"] == "accepted"
    assert [e["state"] for e in shown["events"]] == [
        "decided", "deferred", "decided", "queued", "sending", "accepted"]
    assert len(sandbox.find(deferred["id"])) == 1
    assert service.release_deferred(deferred["id"]) == "accepted"  # a second run changes nothing


def test_listing_checks_the_state(api: Any, world: dict[str, str]) -> None:
    response = api.get("/api/v1/messages", params={"state": "lost"})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_state")
    assert api.post("/api/v1/messages/msg_NOPE/requeue").json()["error"]["code"] == "message_not_found"
