"""What comes back from providers: statuses move a message forward only, a hard bounce and a
complaint act through the policy at once, and a customer's own message lands on their timeline
(STOP included) exactly once."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("immediate_queue")


def _sent(api: Any, send_body: Any, **extra: Any) -> tuple[str, str]:
    message = api.post("/api/v1/messages", json=send_body(**extra)).json()
    shown = api.get(f"/api/v1/messages/{message['id']}").json()
    assert shown["state"] == "accepted"
    return message["id"], shown["provider_message_id"]


def _apply(provider_id: str, status: str, **kw: Any) -> Any:
    from trato.core.db import unit_of_work
    from trato.delivery import feedback

    with unit_of_work() as s:
        return feedback.apply_status(s, provider="sandbox", provider_message_id=provider_id, status=status, **kw)


def test_statuses_only_move_forward_and_repeats_change_nothing(api: Any, sandbox: Any, send_body: Any) -> None:
    message_id, provider_id = _sent(api, send_body)
    assert _apply(provider_id, "read").state == "read"
    late = _apply(provider_id, "delivered")  # a late callback after "read"
    assert (late.state, late.changed) == ("read", False)
    assert _apply(provider_id, "read").changed is False
    events = api.get(f"/api/v1/messages/{message_id}").json()["events"]
    assert [(e["state"], e["details"].get("status")) for e in events[-3:]] == [
        ("read", None), ("ignored", "delivered"), ("ignored", "read")]
    unknown = _apply("nobody-knows-this", "delivered")
    assert unknown.message_id is None and unknown.changed is False


def test_a_hard_bounce_suppresses_the_address_and_the_next_send_is_refused(
        api: Any, sandbox: Any, send_body: Any) -> None:
    _, provider_id = _sent(api, send_body, channels=["email"])
    outcome = _apply(provider_id, "bounced", error="550 5.1.1 no such user", permanent=True)
    assert (outcome.state, outcome.suppressed) == ("bounced", True)
    again = api.post("/api/v1/messages", json=send_body(channels=["email"])).json()
    assert again["state"] == "refused"
    assert "suppressed" in {r["code"] for r in again["decision"]["reasons"]}


def test_a_soft_failure_is_recorded_without_suppressing(api: Any, sandbox: Any, send_body: Any) -> None:
    _, provider_id = _sent(api, send_body, channels=["sms"])
    outcome = _apply(provider_id, "failed", error="30003 unreachable handset")
    assert (outcome.state, outcome.suppressed) == ("failed", False)
    assert api.post("/api/v1/messages", json=send_body(channels=["sms"])).json()["state"] != "refused"


def test_a_complaint_suppresses_and_records_the_refusal_of_the_purpose(
        api: Any, sandbox: Any, send_body: Any, world: dict[str, str]) -> None:
    from trato.core.db import unit_of_work
    from trato.policy import service as policy

    _, provider_id = _sent(api, send_body, channels=["email"], purpose="service")
    assert _apply(provider_id, "complained").suppressed is True
    with unit_of_work() as s:
        consents = {(c.channel, c.purpose): (c.state, c.source) for c in policy.consents_of(s, customer_id=world["customer_id"])}
    assert consents[("email", "service")] == ("denied", "complaint")


def test_an_inbound_stop_is_stored_once_and_suppresses_the_channel(
        api: Any, sandbox: Any, send_body: Any, world: dict[str, str]) -> None:
    from trato.core.db import unit_of_work
    from trato.customers import service as customers
    from trato.delivery import feedback

    for _ in range(2):  # the provider delivers its callback twice
        with unit_of_work() as s:
            outcome = feedback.receive_inbound(s, channel="sms", provider="sandbox", sender="+34 612 345 678",
                                               text="BAJA", provider_message_id="SM-in-1")
    assert outcome.customer_id == world["customer_id"] and outcome.event_id is None
    with unit_of_work() as s:
        received = customers.timeline(s, customer_id=world["customer_id"], kinds=["message_received"])
        assert [e.properties["text"] for e in received] == ["BAJA"]
        assert feedback.last_inbound_at(s, customer_id=world["customer_id"], channel="sms") is not None
    refused = api.post("/api/v1/messages", json=send_body(channels=["sms"])).json()
    assert refused["state"] == "refused"


def test_a_message_from_an_unknown_number_makes_a_profile_for_the_inbox(api: Any, world: dict[str, str]) -> None:
    from trato.core.db import unit_of_work
    from trato.delivery import feedback

    with unit_of_work() as s:
        outcome = feedback.receive_inbound(s, channel="whatsapp", provider="sandbox", sender="+34699000111",
                                           text="Hola, ¿mi pedido?", provider_message_id="wamid.1")
    assert outcome.created_customer and outcome.keyword is None and outcome.customer_id != world["customer_id"]
