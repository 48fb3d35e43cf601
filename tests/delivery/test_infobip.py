"""Infobip end to end against the loopback fake: a send through the API is accepted with
Infobip's message id, its delivery report (to the notify URL that carries the provider's secret)
moves the message forward, callbacks without the secret change nothing, an unknown subscriber is
suppressed, and customers' messages land on their timeline (STOP included)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.delivery.conftest import INFOBIP_SECRET, infobip_settings

pytestmark = pytest.mark.usefixtures("immediate_queue")
BASE = "http://127.0.0.1:8000"


@pytest.fixture
def infobip(infobip_fake: Any, live_server: str) -> Iterator[Any]:
    from trato.delivery.channels import registry
    from trato.delivery.channels.infobip import InfobipSms

    infobip_fake.deliver_to = live_server
    adapter = InfobipSms(infobip_settings(infobip_fake))
    previous = registry.use("sms", adapter)
    yield infobip_fake
    registry.use("sms", previous)
    adapter.close()


def _send(api: Any, send_body: Any) -> dict[str, Any]:
    message = api.post("/api/v1/messages", json=send_body(channels=["sms"])).json()
    return api.get(f"/api/v1/messages/{message['id']}").json()


def _refused_by_policy(api: Any, send_body: Any) -> bool:
    again = api.post("/api/v1/messages", json=send_body(channels=["sms"])).json()
    return again["state"] == "refused" and "suppressed" in {r["code"] for r in again["decision"]["reasons"]}


def test_an_sms_is_accepted_and_its_delivery_report_delivers_it(api: Any, infobip: Any, send_body: Any,
                                                                world: dict[str, str]) -> None:
    shown = _send(api, send_body)
    assert shown["state"] == "accepted" and shown["provider"] == "infobip"
    sent = infobip.sent[shown["provider_message_id"]]
    assert sent["callbackData"] == shown["id"] and sent["to"] == "34612345678"
    answer = infobip.report(shown["provider_message_id"], "DELIVERED")
    assert answer.status_code == 200 and answer.json() == {"applied": 1}
    after = api.get(f"/api/v1/messages/{shown['id']}").json()
    assert after["state"] == "delivered"
    assert after["events"][-1]["details"]["provider_status"] == "DELIVERED_TO_HANDSET"
    assert after["events"][-1]["details"]["segments"] == 1


@pytest.mark.parametrize("where", ["wrong-token", "no-basic", "wrong-basic"])
def test_a_report_without_the_secret_is_refused_and_changes_nothing(
        api: Any, infobip: Any, send_body: Any, world: dict[str, str], where: str) -> None:
    import httpx

    shown = _send(api, send_body)
    provider_id = shown["provider_message_id"]
    if where == "wrong-token":
        answer = infobip.report(provider_id, url=f"{BASE}/hooks/infobip/infobip/{'x' * 28}/reports")
    else:
        auth = ("infobip", "not-the-secret") if where == "wrong-basic" else None
        answer = httpx.post(f"{infobip.deliver_to}/hooks/infobip/infobip/reports", auth=auth, timeout=10,
                            json={"results": [{"messageId": provider_id, "status": {"groupName": "DELIVERED"}}]})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "bad_signature"
    assert api.get(f"/api/v1/messages/{shown['id']}").json()["state"] == "accepted"


def test_an_unknown_subscriber_fails_for_good_and_is_suppressed(api: Any, infobip: Any, send_body: Any,
                                                               world: dict[str, str]) -> None:
    shown = _send(api, send_body)
    infobip.report(shown["provider_message_id"], "UNDELIVERABLE", error="EC_UNKNOWN_SUBSCRIBER")
    after = api.get(f"/api/v1/messages/{shown['id']}").json()
    assert after["state"] == "failed" and "EC_UNKNOWN_SUBSCRIBER" in after["last_error"]
    assert _refused_by_policy(api, send_body)


@pytest.mark.parametrize(("group", "error"), [("EXPIRED", None), ("UNDELIVERABLE", "EC_ABSENT_SUBSCRIBER")])
def test_an_expiry_or_an_absent_handset_fails_without_suppressing(
        api: Any, infobip: Any, send_body: Any, world: dict[str, str], group: str, error: str | None) -> None:
    shown = _send(api, send_body)
    infobip.report(shown["provider_message_id"], group, error=error)
    assert api.get(f"/api/v1/messages/{shown['id']}").json()["state"] == "failed"
    assert not _refused_by_policy(api, send_body)


def test_a_report_with_basic_auth_from_the_portal_is_accepted(api: Any, infobip: Any, send_body: Any,
                                                             world: dict[str, str]) -> None:
    import httpx

    shown = _send(api, send_body)
    result = {"messageId": shown["provider_message_id"], "status": {"groupName": "DELIVERED", "name": "DELIVERED"}}
    answer = httpx.post(f"{infobip.deliver_to}/hooks/infobip/infobip/reports", auth=("trato", INFOBIP_SECRET),
                        json={"results": [result]}, timeout=10)
    assert answer.status_code == 200
    assert api.get(f"/api/v1/messages/{shown['id']}").json()["state"] == "delivered"


def test_a_stop_to_our_number_suppresses_and_the_next_sms_is_refused(api: Any, infobip: Any, send_body: Any,
                                                                     world: dict[str, str]) -> None:
    url = f"{BASE}/hooks/infobip/infobip/{INFOBIP_SECRET}/inbound"
    for _ in range(2):  # forwarded twice: stored once
        answer = infobip.incoming(url, sender="+34612345678", text="BAJA", message_id="ib-in-1")
        assert answer.status_code == 200
    assert _refused_by_policy(api, send_body)
    timeline = api.get(f"/api/v1/customers/{world['customer_id']}/timeline?kind=message_received").json()
    assert [e["properties"]["text"] for e in timeline["items"]] == ["BAJA"]


def test_a_message_from_an_unknown_number_makes_a_profile(api: Any, infobip: Any, world: dict[str, str]) -> None:
    from trato.core.db import unit_of_work
    from trato.customers import service as customers

    answer = infobip.incoming(f"{BASE}/hooks/infobip/infobip/inbound", sender="+34699555666", text="¿Horario?",
                              auth=("infobip", INFOBIP_SECRET))
    assert answer.status_code == 200 and answer.json() == {"received": 1}
    with unit_of_work() as s:
        someone = customers.lookup(s, kind="phone", value="+34699555666")
        (entry,) = customers.timeline(s, customer_id=someone.id, kinds=["message_received"])
    assert entry.properties["text"] == "¿Horario?" and entry.properties["from"] == "+34699555666"
    refused = infobip.incoming(f"{BASE}/hooks/infobip/infobip/inbound", sender="+34699777888", text="x")
    assert refused.status_code == 401


@pytest.mark.parametrize("body", [b"not json", b'{"results": "nope"}', b"[1, 2]"])
def test_a_callback_that_cannot_be_read_is_a_clear_error(infobip: Any, body: bytes) -> None:
    import httpx

    answer = httpx.post(f"{infobip.deliver_to}/hooks/infobip/infobip/{INFOBIP_SECRET}/reports", content=body,
                        headers={"Content-Type": "application/json"}, timeout=10)
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_callback"


def test_a_callback_for_another_provider_is_not_found(client: Any, infobip: Any) -> None:
    answer = client.post("/hooks/nobody/infobip/reports", json={"results": []})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "provider_not_found"
    twilio_path = client.post("/hooks/infobip/twilio/status", data={"MessageSid": "SM1"})
    assert twilio_path.status_code == 404
