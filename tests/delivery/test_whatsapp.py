"""WhatsApp end to end: a send through the API reaches Meta's Cloud API (a real HTTP server on
loopback), the wamid comes back, and Meta's signed webhooks — posted over HTTP to the running
app — move the message forward, store what customers write (STOP included) and open the 24-hour
window in which free text goes instead of a template."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.delivery.conftest import approve_communication
from tests.fakes import meta as fake_meta

pytestmark = pytest.mark.usefixtures("immediate_queue")

ANA = "34612345678"
TEMPLATE = {"mode": "template", "template_name": "factura_disponible", "category": "utility",
            "header": "Factura {{1}}", "header_params": ["{{ data.invoice }}"],
            "body": "Hola {{1}}, tu factura de {{2}} está disponible.",
            "params": ["{{ customer.first_name }}", "{{ data.amount|money }}"], "footer": "Banco Ejemplo"}
WITH_BUTTON = {**TEMPLATE, "template_name": "factura_con_boton",
               "buttons": [{"type": "url", "text": "Ver factura", "url": "https://example.com/f/{{1}}",
                            "url_param": "{{ data.invoice }}"}]}
SESSION = {"mode": "session", "text": "Hola {{ customer.first_name }}, ¿en qué más te podemos ayudar?"}


@pytest.fixture
def meta() -> Iterator[fake_meta.FakeMeta]:
    from trato.content.channel_parts import whatsapp_definition

    fake = fake_meta.running()
    fake.reset()
    for variant in (TEMPLATE, WITH_BUTTON):
        fake.register(whatsapp_definition(variant, "es"))
    yield fake
    fake.reset()


@pytest.fixture
def adapter(meta: fake_meta.FakeMeta) -> Iterator[Any]:
    """The WhatsApp adapter sends the channel and answers /hooks/whatsapp/…; the configuration comes back after."""
    from trato.delivery.channels import registry
    from trato.delivery.channels.whatsapp import WhatsAppCloud, WhatsAppSettings

    subject = WhatsAppCloud(WhatsAppSettings(token=meta.token, phone_number_id=meta.phone_number_id,
                                             app_secret=meta.app_secret, verify_token="hub-verify-1",
                                             base_url=meta.url, timeout=5))
    previous = registry.use("whatsapp", subject)
    yield subject
    registry.use("whatsapp", previous)
    subject.close()


@pytest.fixture
def communications(world: dict[str, str]) -> dict[str, str]:
    from trato.core.db import unit_of_work

    made = {}
    with unit_of_work() as s:
        for key, variant in (("wa-invoice", TEMPLATE), ("wa-button", WITH_BUTTON), ("wa-session", SESSION)):
            made[key] = approve_communication(s, key=key, content={"whatsapp": {"es": variant}},
                                              channels=["whatsapp"], languages=["es"]).key
    return made


@pytest.fixture
def hook(live_server: str) -> str:
    return f"{live_server}/hooks/whatsapp/whatsapp"


def _send(api: Any, world: dict[str, str], communication: str) -> dict[str, Any]:
    created = api.post("/api/v1/messages", json={
        "customer": {"id": world["customer_id"]}, "communication": communication,
        "data": {"invoice": "F-7", "amount": 48.2}, "channels": ["whatsapp"]})
    assert created.status_code == 202, created.text
    return api.get(f"/api/v1/messages/{created.json()['id']}").json()


def _customer_writes(meta: fake_meta.FakeMeta, hook: str, text: str, **kw: Any) -> dict[str, Any]:
    meta.open_windows.add(ANA)  # Meta opens the service window when the customer writes
    answer = meta.post_webhook(hook, meta.inbound(ANA, "text", {"body": text}, **kw))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_template_goes_out_then_signed_statuses_move_it_to_delivered_and_read(
        api: Any, world: dict[str, str], communications: dict[str, str], adapter: Any,
        meta: fake_meta.FakeMeta, hook: str) -> None:
    shown = _send(api, world, "wa-invoice")
    assert (shown["state"], shown["provider"]) == ("accepted", "whatsapp")
    [sent] = meta.sent
    assert shown["provider_message_id"] == sent["wamid"] and sent["wamid"].startswith("wamid.")
    assert sent["to"] == ANA and sent["type"] == "template"
    assert sent["template"]["name"] == "factura_disponible" and sent["template"]["language"] == {"code": "es"}
    assert sent["template"]["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": "F-7"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "48,20\xa0€"}]}]
    method, path, headers = meta.requests[-1]
    assert (method, path) == ("POST", f"/v21.0/{meta.phone_number_id}/messages")
    assert headers["Authorization"] == f"Bearer {meta.token}"

    wamid = sent["wamid"]
    sent_status = meta.post_webhook(hook, meta.statuses(meta.status(wamid, "sent", ANA)))
    assert sent_status.status_code == 200 and sent_status.json()["changed"] == 0
    delivered = meta.post_webhook(hook, meta.statuses(meta.status(wamid, "delivered", ANA)))
    assert delivered.status_code == 200 and delivered.json()["changed"] == 1
    assert api.get(f"/api/v1/messages/{shown['id']}").json()["state"] == "delivered"
    read = meta.statuses(meta.status(wamid, "read", ANA))
    for _ in range(2):  # Meta retries: the second one changes nothing
        assert meta.post_webhook(hook, read).status_code == 200
    events = api.get(f"/api/v1/messages/{shown['id']}").json()["events"]
    assert [e["state"] for e in events][-4:] == ["accepted", "delivered", "read", "ignored"]
    assert events[-3]["details"]["pricing_category"] == "utility"


def test_inside_the_window_free_text_goes_and_outside_it_the_template(
        api: Any, world: dict[str, str], communications: dict[str, str], adapter: Any,
        meta: fake_meta.FakeMeta, hook: str) -> None:
    outside = _send(api, world, "wa-invoice")
    assert outside["state"] == "accepted" and meta.sent[-1]["type"] == "template"
    refused = _send(api, world, "wa-session")  # free text to someone who never wrote: not even tried
    assert refused["state"] == "failed" and "24 hours" in refused["last_error"]
    assert len(meta.sent) == 1 and len([r for r in meta.requests if r[0] == "POST"]) == 1

    _customer_writes(meta, hook, "Hola, ¿me reenviáis la factura?")
    inside = _send(api, world, "wa-invoice")
    assert inside["state"] == "accepted"
    assert meta.sent[-1]["type"] == "text"
    assert meta.sent[-1]["text"]["body"] == "*Factura F-7*\n\nHola Ana, tu factura de 48,20\xa0€ está disponible.\n\n" \
                                            "_Banco Ejemplo_"
    session = _send(api, world, "wa-session")
    assert session["state"] == "accepted"
    assert meta.sent[-1]["text"]["body"] == "Hola Ana, ¿en qué más te podemos ayudar?"
    with_button = _send(api, world, "wa-button")  # a button needs the template even inside the window
    assert with_button["state"] == "accepted" and meta.sent[-1]["type"] == "template"
    assert meta.sent[-1]["template"]["components"][-1] == {
        "type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "F-7"}]}


def test_a_window_closed_at_meta_falls_back_to_the_template(
        api: Any, world: dict[str, str], communications: dict[str, str], adapter: Any,
        meta: fake_meta.FakeMeta, hook: str) -> None:
    _customer_writes(meta, hook, "Gracias")
    meta.open_windows.clear()  # Meta counts the 24 hours its own way: it answers 131047
    shown = _send(api, world, "wa-invoice")
    assert shown["state"] == "accepted"
    posts = [r for r in meta.requests if r[0] == "POST"]
    assert len(posts) == 2 and [s["type"] for s in meta.sent] == ["template"]
    assert shown["provider_message_id"] == meta.sent[0]["wamid"]
    session = _send(api, world, "wa-session")  # no template to fall back on: failed for good
    assert session["state"] == "failed" and "131047" in session["last_error"]


def test_the_handshake_echoes_the_challenge_only_for_the_right_token(
        client: Any, adapter: Any, meta: fake_meta.FakeMeta, hook: str) -> None:
    good = meta.handshake(hook, "hub-verify-1", challenge="1158201444")
    assert (good.status_code, good.text) == (200, "1158201444")
    assert good.headers["content-type"].startswith("text/plain")
    bad = meta.handshake(hook, "guessed")
    assert bad.status_code == 403 and bad.json()["error"]["code"] == "bad_signature"
    assert "1158201444" not in meta.handshake(hook, "").text
    wrong_mode = client.get("/hooks/whatsapp/whatsapp", params={
        "hub.mode": "unsubscribe", "hub.verify_token": "hub-verify-1", "hub.challenge": "x"})
    assert wrong_mode.status_code == 403
    assert client.get("/hooks/nobody/whatsapp", params={"hub.mode": "subscribe"}).status_code == 404


def test_a_forged_or_tampered_webhook_is_refused_and_changes_nothing(
        api: Any, world: dict[str, str], communications: dict[str, str], adapter: Any,
        meta: fake_meta.FakeMeta, hook: str) -> None:
    from trato.core.db import unit_of_work
    from trato.customers import service as customers

    shown = _send(api, world, "wa-invoice")
    wamid = shown["provider_message_id"]
    payload = meta.statuses(meta.status(wamid, "delivered", ANA))
    tampered = meta.post_webhook(hook, payload, tamper=(b'"delivered"', b'"failed"'))
    assert tampered.status_code == 403 and tampered.json()["error"]["code"] == "bad_signature"
    assert meta.post_webhook(hook, payload, signature="").status_code == 403
    assert meta.post_webhook(hook, payload, signature=meta.sign(b"{}", "another-app")).status_code == 403
    assert meta.post_webhook(hook, payload, signature="sha1=" + "0" * 40).status_code == 403
    stop = meta.inbound(ANA, "text", {"body": "BAJA"})
    assert meta.post_webhook(hook, stop, tamper=(b"BAJA", b"ALTA")).status_code == 403
    after = api.get(f"/api/v1/messages/{shown['id']}").json()
    assert after["state"] == "accepted" and after["events"][-1]["state"] == "accepted"
    with unit_of_work() as s:
        assert customers.timeline(s, customer_id=world["customer_id"], kinds=["message_received"]) == []
    assert _send(api, world, "wa-invoice")["state"] == "accepted"  # no suppression either


def test_a_customer_message_lands_once_and_baja_stops_the_next_whatsapp(
        api: Any, world: dict[str, str], communications: dict[str, str], adapter: Any,
        meta: fake_meta.FakeMeta, hook: str) -> None:
    from trato.core.db import unit_of_work
    from trato.customers import service as customers

    payload = meta.inbound(ANA, "text", {"body": "¿Cuándo vence la factura?"}, name="Ana G.")
    for _ in range(2):  # delivered twice by Meta, stored once
        assert meta.post_webhook(hook, payload).status_code == 200
    image = meta.inbound(ANA, "image", {"caption": "el recibo", "mime_type": "image/jpeg",
                                        "sha256": "c1a0", "id": "1479537139650973"})
    reply = meta.inbound(ANA, "button", {"payload": "PAGAR", "text": "Pagar ahora"},
                         context={"from": "34900000000", "id": "wamid.ours"})
    chosen = meta.inbound(ANA, "interactive", {"type": "list_reply", "list_reply": {
        "id": "plan-b", "title": "Plan B", "description": "12 meses"}})
    for item in (image, reply, chosen):
        assert meta.post_webhook(hook, item).json()["stored"] == 1
    with unit_of_work() as s:
        received = customers.timeline(s, customer_id=world["customer_id"], kinds=["message_received"])
        got = sorted((e.properties["text"], e.properties.get("type")) for e in received)
        first = next(e for e in received if e.properties["type"] == "text")
        media = next(e for e in received if e.properties["type"] == "image").properties["media"]
        button = next(e for e in received if e.properties["type"] == "button").properties
    assert got == [("Pagar ahora", "button"), ("Plan B", "interactive"), ("el recibo", "image"),
                   ("¿Cuándo vence la factura?", "text")]
    assert first.properties["profile_name"] == "Ana G." and first.properties["from"] == "+34612345678"
    assert media == [{"kind": "image", "id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "c1a0"}]
    assert (button["button_payload"], button["in_reply_to"]) == ("PAGAR", "wamid.ours")

    assert _customer_writes(meta, hook, "BAJA")["stored"] == 1
    refused = _send(api, world, "wa-invoice")
    assert refused["state"] == "refused"
    assert "suppressed" in {r["code"] for r in refused["decision"]["reasons"]}
    assert not [s for s in meta.sent if s["type"] == "template"]


def test_one_post_with_many_entries_is_applied_whole(
        api: Any, world: dict[str, str], communications: dict[str, str], adapter: Any,
        meta: fake_meta.FakeMeta, hook: str) -> None:
    first, second = _send(api, world, "wa-invoice"), _send(api, world, "wa-invoice")
    batch = meta.statuses(meta.status(first["provider_message_id"], "delivered", ANA))
    more = meta.statuses(meta.status(second["provider_message_id"], "read", ANA),
                         meta.status("wamid.not-ours", "delivered", ANA))
    batch["entry"] += more["entry"]
    batch["entry"] += meta.inbound("34699000111", "text", {"body": "Hola"}, name="Luis")["entry"]
    answer = meta.post_webhook(hook, batch)
    assert answer.json() == {"statuses": 3, "changed": 2, "messages": 1, "stored": 1}
    assert api.get(f"/api/v1/messages/{first['id']}").json()["state"] == "delivered"
    assert api.get(f"/api/v1/messages/{second['id']}").json()["state"] == "read"


def test_a_failed_status_records_meta_error_and_undeliverable_suppresses(
        api: Any, world: dict[str, str], communications: dict[str, str], adapter: Any,
        meta: fake_meta.FakeMeta, hook: str) -> None:
    first = _send(api, world, "wa-invoice")
    error = meta.error_item(131049, "This message was not delivered to maintain healthy ecosystem engagement.",
                            "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.")
    meta.post_webhook(hook, meta.statuses(meta.status(first["provider_message_id"], "failed", ANA, errors=[error])))
    failed = api.get(f"/api/v1/messages/{first['id']}").json()
    assert failed["state"] == "failed" and "131049" in failed["last_error"]
    assert _send(api, world, "wa-invoice")["state"] == "accepted"  # not the number's fault: not suppressed

    second = _send(api, world, "wa-invoice")
    gone = meta.error_item(131026, "Message undeliverable", "Unable to deliver message: not a WhatsApp user")
    meta.post_webhook(hook, meta.statuses(meta.status(second["provider_message_id"], "failed", ANA, errors=[gone])))
    assert api.get(f"/api/v1/messages/{second['id']}").json()["state"] == "failed"
    refused = _send(api, world, "wa-invoice")
    assert refused["state"] == "refused"
    assert "suppressed" in {r["code"] for r in refused["decision"]["reasons"]}


def test_webhooks_for_another_provider_or_not_json_are_answered_clearly(
        client: Any, adapter: Any, meta: fake_meta.FakeMeta, hook: str) -> None:
    body = b"not json"
    answer = client.post("/hooks/whatsapp/whatsapp", content=body,
                         headers={"X-Hub-Signature-256": meta.sign(body)})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_callback"
    other = meta.post_webhook(hook, {"object": "page", "entry": []})
    assert other.status_code == 200 and other.json()["statuses"] == 0
    assert client.post("/hooks/sandbox-x/whatsapp", content=b"{}").status_code == 404


def test_meta_throttling_retries_later_and_silence_leaves_it_possibly_sent(
        api: Any, world: dict[str, str], communications: dict[str, str], adapter: Any,
        meta: fake_meta.FakeMeta) -> None:
    from trato.delivery.channels.whatsapp import WhatsAppCloud

    meta.error_next(400, 131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit")
    throttled = _send(api, world, "wa-invoice")
    assert throttled["state"] == "retrying" and "131056" in throttled["last_error"]
    assert throttled["events"][-1]["details"]["retry_at"] > throttled["events"][-1]["at"]

    meta.error_next(401, 190, "Error validating access token: Session has expired.", subcode=463)
    expired = _send(api, world, "wa-invoice")
    assert expired["state"] == "retrying" and "190/463" in expired["last_error"]

    meta.error_next(400, 131026, "(#131026) Message undeliverable")
    assert _send(api, world, "wa-invoice")["state"] == "failed"

    adapter.close()
    adapter.settings = adapter.wa.model_copy(update={"timeout": 0.5})
    adapter.http = WhatsAppCloud(adapter.settings).http  # a client with the short timeout
    meta.hang_next()
    hung = _send(api, world, "wa-invoice")
    assert hung["state"] == "possibly_sent" and "ReadTimeout" in hung["last_error"]


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=8)
_STATUS = st.fixed_dictionaries({"id": st.one_of(st.text(max_size=12), _JSON),
                                 "status": st.sampled_from(["sent", "delivered", "read", "failed", "deleted", "x"])},
                                optional={"timestamp": _JSON, "errors": st.lists(st.dictionaries(
                                    st.sampled_from(["code", "title", "error_data"]), _JSON), max_size=2),
                                    "pricing": _JSON})
_MESSAGE = st.fixed_dictionaries({"from": st.one_of(st.sampled_from([ANA, "34699000111", "", "٣٤٦١٢٣٤٥٦٧٨"]), _JSON),
                                  "id": st.one_of(st.text(min_size=1, max_size=12), _JSON),
                                  "type": st.sampled_from(["text", "button", "interactive", "image", "location",
                                                           "reaction", "contacts", "system", "unsupported"])},
                                 optional={"text": _JSON, "button": _JSON, "interactive": _JSON, "image": _JSON,
                                           "location": _JSON, "contacts": _JSON, "context": _JSON, "timestamp": _JSON})
_VALUE = st.fixed_dictionaries({}, optional={"statuses": st.lists(_STATUS, max_size=2) | _JSON,
                                             "messages": st.lists(_MESSAGE, max_size=2) | _JSON,
                                             "contacts": _JSON, "metadata": _JSON})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.fixed_dictionaries({"id": _JSON, "changes": st.lists(st.fixed_dictionaries(
    {"field": st.sampled_from(["messages", "account_update"]), "value": _VALUE | _JSON}), max_size=2) | _JSON}),
    max_size=2))
def test_any_signed_payload_is_applied_or_refused_clearly_never_a_crash(database_url: str, entries: Any) -> None:
    """Meta signs what it sends, but its shapes change: whatever arrives is applied or answered 4xx."""
    from trato.core.errors import TratoError
    from trato.delivery.callbacks.meta import apply
    from trato.delivery.channels.whatsapp import WhatsAppCloud, WhatsAppSettings

    subject = WhatsAppCloud(WhatsAppSettings(token="t", phone_number_id="1"))
    try:
        counts = apply(subject, {"object": "whatsapp_business_account", "entry": entries})
    except TratoError as error:
        assert 400 <= error.status_code < 500
    else:
        assert set(counts) == {"statuses", "changed", "messages", "stored"}
