"""The webhook channel: a signed JSON POST that the Standard Webhooks reference library verifies
at a real loopback endpoint; the same webhook-id on every attempt; the endpoint's answer
classified; private targets refused unless the provider allows them."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook as Reference

from tests.console.conftest import signed_in  # noqa: F401
from tests.delivery.conftest import WEBHOOK_SECRET as SECRET
from tests.fakes import webhook_receiver
from trato.core.errors import ConfigurationError
from trato.delivery.channels.base import OutgoingMessage
from trato.delivery.channels.webhook import Webhook, WebhookSettings, sign

assert SECRET == "whsec_" + base64.b64encode(bytes(range(32))).decode()


def adapter_for(receiver: webhook_receiver.Receiver, **settings: Any) -> Webhook:
    values: dict[str, Any] = {"url": receiver.url, "secret": SecretStr(SECRET), "allow_private": True, "timeout": 2}
    values.update(settings)
    return Webhook(WebhookSettings(**values))


def _message(n: int = 1, **extra: Any) -> OutgoingMessage:
    fields: dict[str, Any] = {
        "message_id": f"msg_WEBHOOK{n}", "channel": "webhook", "recipient": "cus_ANA", "customer_id": "cus_ANA",
        "parts": {"event_type": "invoice.ready", "text": "Hola Ana", "data": '{"amount":"12,50 €","invoice":"F-1"}'},
        "metadata": {"communication": "invoice-ready"},
    }
    fields.update(extra)
    return OutgoingMessage(**fields)


@settings(max_examples=200, deadline=None)
@given(message_id=st.text(min_size=1, max_size=40), body=st.binary(max_size=500),
       timestamp=st.integers(min_value=0, max_value=2**33), key=st.binary(min_size=24, max_size=64))
def test_the_signature_is_the_reference_librarys(message_id: str, body: bytes, timestamp: int, key: bytes) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    expected = Reference(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body)
    assert sign(secret, message_id, timestamp, body) == expected


def test_a_message_arrives_signed_with_the_documented_payload(receiver: webhook_receiver.Receiver) -> None:
    adapter = adapter_for(receiver)
    result = adapter.send(_message())
    assert (result.outcome, result.provider_message_id) == ("accepted", "msg_WEBHOOK1")
    [got] = receiver.received
    assert got.verified, got.error
    assert got.headers["webhook-id"] == "msg_WEBHOOK1"
    assert got.headers["webhook-signature"].startswith("v1,")
    assert got.payload["type"] == "invoice.ready"
    assert got.payload["data"] == {
        "message_id": "msg_WEBHOOK1", "customer_id": "cus_ANA", "communication": "invoice-ready", "language": "es",
        "transactional": True, "text": "Hola Ana", "data": {"amount": "12,50 €", "invoice": "F-1"}}
    assert datetime.fromisoformat(got.payload["timestamp"]).timestamp() == int(got.headers["webhook-timestamp"])
    adapter.close()


def test_a_forged_or_tampered_request_would_not_verify(receiver: webhook_receiver.Receiver) -> None:
    other = adapter_for(receiver, secret=SecretStr("whsec_" + base64.b64encode(b"x" * 32).decode()))
    result = other.send(_message())
    assert result.outcome == "refused" and result.permanent  # the receiver answers 401
    assert [r.verified for r in receiver.received] == [False]
    assert receiver.received[0].error == "No matching signature found"
    other.close()


def test_a_replay_keeps_the_webhook_id_so_the_receiver_can_deduplicate(receiver: webhook_receiver.Receiver) -> None:
    adapter = adapter_for(receiver)
    receiver.fail_next("status", 503)
    first = adapter.send(_message(7))
    assert first.outcome == "refused" and not first.permanent
    second = adapter.send(_message(7))
    assert second.outcome == "accepted"
    assert [r.headers["webhook-id"] for r in receiver.received] == ["msg_WEBHOOK7", "msg_WEBHOOK7"]
    assert all(r.verified for r in receiver.received)
    adapter.close()


def test_the_endpoints_answers_are_classified(receiver: webhook_receiver.Receiver) -> None:
    adapter = adapter_for(receiver, timeout=0.5)
    receiver.fail_next("status", 410)
    gone = adapter.send(_message(1))
    assert (gone.outcome, gone.permanent) == ("refused", True) and "gone" in (gone.error or "")
    receiver.fail_next("status", 500)
    assert (r := adapter.send(_message(2))).outcome == "refused" and not r.permanent
    receiver.fail_next("retry_after", 30)
    slow = adapter.send(_message(3))
    assert (slow.outcome, slow.permanent, slow.retry_after) == ("refused", False, 30.0)
    receiver.fail_next("status", 422)
    assert (r := adapter.send(_message(4))).outcome == "refused" and r.permanent
    receiver.fail_next("redirect")
    moved = adapter.send(_message(5))
    assert (moved.outcome, moved.permanent) == ("refused", True) and "not followed" in (moved.error or "")
    assert len(receiver.received) == 5  # the redirect's target was never asked
    receiver.fail_next("hang")
    hung = adapter.send(_message(6))
    assert hung.outcome == "ambiguous"  # it was sent; whether the endpoint acted on it is unknown
    receiver.release.set()
    receiver.fail_next("close")
    assert adapter.send(_message(8)).outcome == "ambiguous"
    adapter.close()


def test_private_targets_are_refused_unless_allowed_and_nothing_is_sent(receiver: webhook_receiver.Receiver) -> None:
    strict = adapter_for(receiver, allow_private=False)
    result = strict.send(_message())
    assert (result.outcome, result.permanent) == ("refused", True)
    assert "must start with https://" in (result.error or "")
    https_loopback = adapter_for(receiver, allow_private=False, url=f"https://127.0.0.1:{receiver.port}/x")
    assert "loopback" in (https_loopback.send(_message()).error or "")
    metadata = adapter_for(receiver, allow_private=False, url="https://meta.example/latest",
                           resolver=None)
    metadata._resolver = lambda host, port: ["169.254.169.254"]
    assert "metadata" in (metadata.send(_message()).error or "")
    assert receiver.received == []
    assert strict.check().ok is False


def test_a_customer_url_is_used_only_when_the_provider_allows_it(receiver: webhook_receiver.Receiver) -> None:
    own = f"http://127.0.0.1:{receiver.port}/customers/ana"
    adapter_for(receiver).send(_message(1, recipient=own))
    adapter_for(receiver, customer_urls=True).send(_message(2, recipient=own))
    assert [r.path for r in receiver.received] == ["/hooks/trato", "/customers/ana"]


def test_a_host_name_is_resolved_once_and_kept_in_the_request(receiver: webhook_receiver.Receiver) -> None:
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["192.0.2.1"]  # a rebinding DNS answer

    adapter = Webhook(WebhookSettings(url=f"http://hooks.company.test:{receiver.port}/in", secret=SecretStr(SECRET),
                                      allow_private=True), resolver=resolver)
    assert adapter.send(_message()).outcome == "accepted"
    assert calls == ["hooks.company.test"]
    assert receiver.received[0].headers["host"] == f"hooks.company.test:{receiver.port}"
    adapter.close()


def test_settings_from_one_url() -> None:
    settings = Webhook.settings_from_url(f"webhooks://hooks.example.com/in/trato?secret={SECRET}&v=2")
    assert (settings.url, settings.allow_private, settings.customer_urls) == (
        "https://hooks.example.com/in/trato?v=2", False, False)
    assert settings.secret is not None and settings.secret.get_secret_value() == SECRET
    inside = Webhook.settings_from_url(f"webhook://10.0.0.5:8080/h?secret={SECRET}&allow_private=true"
                                       "&customer_urls=1&timeout=3")
    assert (inside.url, inside.allow_private, inside.customer_urls, inside.timeout) == (
        "http://10.0.0.5:8080/h", True, True, 3.0)
    assert SECRET not in repr(inside)
    plus = "whsec_" + base64.b64encode(bytes([251, 255] * 16)).decode()  # "+" and "/" in base64
    assert "+" in plus and "/" in plus
    written = Webhook.settings_from_url(f"webhooks://h.example/x?secret={plus}")
    assert written.secret is not None and written.secret.get_secret_value() == plus
    encoded = Webhook.settings_from_url(f"webhooks://h.example/x?secret={plus.replace('+', '%2B')}")
    assert encoded.secret is not None and encoded.secret.get_secret_value() == plus
    for bad in ("https://hooks.example.com/?secret=" + SECRET, "webhooks://h/?secret=nope",
                f"webhook://h/?secret={SECRET}",
                "webhooks://h/?secret=whsec_!!!", "webhooks://h/?allow_private=maybe"):
        with pytest.raises(ConfigurationError):
            Webhook.settings_from_url(bad)


def test_check_reaches_the_endpoint_without_sending(receiver: webhook_receiver.Receiver) -> None:
    adapter = adapter_for(receiver)
    found = adapter.check()
    assert found.ok and "127.0.0.1" in found.detail
    assert receiver.received == []
    assert Webhook().check().ok is False
    assert Webhook().send(_message()).permanent  # nothing configured: a clear, final refusal
    adapter.close()


# -- through delivery -----------------------------------------------------------------------------------


WEBHOOK_CONTENT = {
    "webhook": {"es": {"event_type": "invoice.ready", "text": "Hola {{ customer.first_name }}",
                       "data": {"invoice": "{{ data.invoice }}", "name": "{{ customer.first_name }}"}}},
    "sms": {"es": {"text": "Hola {{ customer.first_name }}"}},
}


@pytest.mark.usefixtures("immediate_queue")
def test_a_send_on_the_webhook_channel_reaches_the_endpoint(
        api: Any, world: dict[str, str], receiver: webhook_receiver.Receiver) -> None:
    from tests.delivery.conftest import approve_communication
    from trato.core.db import unit_of_work
    from trato.customers import service as customers
    from trato.delivery.channels import registry

    with unit_of_work() as s:
        communication = approve_communication(s, key="invoice-hook", content=WEBHOOK_CONTENT,
                                              channels=["webhook", "sms"], languages=["es"])
        customers.set_traits(s, customer_id=world["customer_id"], traits={"first_name": 'Ana "}'}, actor="test")
    adapter = adapter_for(receiver)
    previous = registry.use("webhook", adapter)
    try:
        sent = api.post("/api/v1/messages", json={"customer": {"id": world["customer_id"]},
                                                  "communication": communication.key, "data": {"invoice": "F-9"}})
        assert sent.status_code in (200, 201, 202), sent.text
        message = api.get(f"/api/v1/messages/{sent.json()['id']}").json()
    finally:
        registry.use("webhook", previous)
        adapter.close()
    assert (message["channel"], message["state"], message["provider_message_id"]) == (
        "webhook", "accepted", message["id"])
    [got] = receiver.verified()
    assert got.headers["webhook-id"] == message["id"]
    assert got.payload["type"] == "invoice.ready"
    # A customer's value with JSON syntax in it stays a value: the payload's shape is ours.
    assert got.payload["data"]["data"] == {"invoice": "F-9", "name": 'Ana "}'}
    assert got.payload["data"]["customer_id"] == world["customer_id"]
    assert orjson.loads(got.body)["data"]["text"] == 'Hola Ana "}'


def test_a_name_that_does_not_resolve_is_retried_not_failed(receiver: webhook_receiver.Receiver) -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise OSError("Temporary failure in name resolution")

    adapter = Webhook(WebhookSettings(url="https://hooks.company.test/in", secret=SecretStr(SECRET)), resolver=no_dns)
    result = adapter.send(_message())
    assert (result.outcome, result.permanent) == ("refused", False) and "cannot be resolved" in (result.error or "")


def test_the_preview_shows_the_webhooks_event_and_fields(api: Any, world: dict[str, str]) -> None:
    from tests.delivery.conftest import approve_communication
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        communication = approve_communication(s, key="invoice-hook", content=WEBHOOK_CONTENT,
                                              channels=["webhook", "sms"], languages=["es"])
    shown = api.post(f"/api/v1/communications/{communication.id}/preview",
                     json={"customer_id": world["customer_id"], "data": {"invoice": "F-3"}})
    assert shown.status_code == 200, shown.text
    text = shown.text
    assert "invoice.ready" in text and "F-3" in text
    bad = api.post("/api/v1/communications", json={
        "key": "bad-hook", "name": "Bad", "purpose": "transactional", "department": "billing", "kind": "reactive",
        "channels": ["webhook"], "languages": ["es"], "default_language": "es",
        "content": {"webhook": {"es": {"event_type": "has spaces", "data": {"a b": "x"}}}}})
    assert bad.status_code == 422
    assert "event_type" in bad.text and "a b" in bad.text


@pytest.mark.usefixtures("immediate_queue")
def test_a_customers_own_url_identity_is_where_their_messages_go(
        api: Any, world: dict[str, str], receiver: webhook_receiver.Receiver, signed_in: Any) -> None:  # noqa: F811
    from tests.delivery.conftest import approve_communication
    from trato.core.db import unit_of_work
    from trato.customers import service as customers
    from trato.delivery.channels import registry

    own = f"http://127.0.0.1:{receiver.port}/customers/Ana?token=AbC"
    with unit_of_work() as s:
        communication = approve_communication(s, key="invoice-hook", content=WEBHOOK_CONTENT,
                                              channels=["webhook"], languages=["es"])
        customers.add_identity(s, customer_id=world["customer_id"], kind="webhook", value=own, actor="test")
    adapter = adapter_for(receiver, customer_urls=True)
    previous = registry.use("webhook", adapter)
    try:
        sent = api.post("/api/v1/messages", json={"customer": {"id": world["customer_id"]},
                                                  "communication": communication.key, "data": {"invoice": "F-4"}})
        message = api.get(f"/api/v1/messages/{sent.json()['id']}").json()
    finally:
        registry.use("webhook", previous)
        adapter.close()
    assert message["state"] == "accepted"
    [got] = receiver.verified()
    assert got.path == "/customers/Ana?token=AbC"
    archived = signed_in.get(f"/archive/{message['archive_entry_id']}?lang=en")  # the archive shows it too
    assert archived.status_code == 200 and "invoice.ready" in archived.text and "Webhook" in archived.text
