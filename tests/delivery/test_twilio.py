"""Twilio end to end against the loopback fake: a send through the API reaches Twilio's Messages
resource, Twilio's signed status callback moves the message forward, forged callbacks change
nothing, a STOP to our number suppresses the next SMS, and every way Twilio can answer (or not)
is classified for retries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.delivery.conftest import approve_communication, twilio_settings

pytestmark = pytest.mark.usefixtures("immediate_queue")
BASE = "http://127.0.0.1:8000"  # TRATO_BASE_URL in the tests: what Twilio was told, and signs


@pytest.fixture
def twilio(twilio_fake: Any, live_server: str) -> Iterator[Any]:
    """SMS and calls go through the fake Twilio; its callbacks reach the app on its port."""
    from trato.delivery.channels import registry
    from trato.delivery.channels.twilio import TwilioSms, TwilioVoice

    twilio_fake.deliver_to = live_server
    sms, voice = TwilioSms(twilio_settings(twilio_fake)), TwilioVoice(twilio_settings(twilio_fake))
    previous = {"sms": registry.use("sms", sms), "voice": registry.use("voice", voice)}
    yield twilio_fake
    for channel, adapter in previous.items():
        registry.use(channel, adapter)
    sms.close()
    voice.close()


def _send(api: Any, send_body: Any, **extra: Any) -> dict[str, Any]:
    message = api.post("/api/v1/messages", json=send_body(channels=["sms"], **extra)).json()
    return api.get(f"/api/v1/messages/{message['id']}").json()


def _suppressed(world: dict[str, str], api: Any, send_body: Any) -> bool:
    again = api.post("/api/v1/messages", json=send_body(channels=["sms"])).json()
    return again["state"] == "refused" and "suppressed" in {r["code"] for r in again["decision"]["reasons"]}


def test_the_signature_is_twilios_documented_one() -> None:
    from tests.fakes.twilio import sign
    from trato.delivery.callbacks.twilio import signature, verify

    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = [("CallSid", "CA1234567890ABCDE"), ("Digits", "1234"), ("From", "+14158675309"), ("To", "+18005551212"),
              ("Caller", "+14158675309")]
    assert signature("12345", url, params) == sign("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert signature("12345", url, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    # Twilio's helpers accept the URL with or without the scheme's default port.
    assert verify("12345", url.replace(".com", ".com:1234"), params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert verify("12345", url, params, "kvajT1Ptam85bY51eRf/AJRuM3w=")  # signed with :443
    assert verify("12345", url.replace("https", "http"), params, "0ZXoZLH/DfblKGATFgpif+LLRf4=")  # with :80
    assert not verify("12345", url, params, None)
    assert not verify("12346", url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not verify("12345", url, params[:-1], "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_an_sms_is_accepted_by_twilio_and_its_signed_status_delivers_it(
        api: Any, twilio: Any, send_body: Any, world: dict[str, str]) -> None:
    shown = _send(api, send_body)
    assert shown["state"] == "accepted" and shown["provider"] == "twilio"
    sid = shown["provider_message_id"]
    assert sid.startswith("SM") and sid in twilio.messages
    (request,) = twilio.requests
    form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
    assert form["To"] == "+34612345678" and form["From"] == "+34911000000"
    assert form["Body"] == "Hola Ana: tu factura F-1 ya está disponible."
    assert form["StatusCallback"] == f"{BASE}/hooks/twilio/twilio/status"
    accepted = next(e for e in shown["events"] if e["state"] == "accepted")
    assert accepted["details"]["segments"] == 1

    assert twilio.message_status(sid, "sent").status_code == 204  # nothing to move yet
    answer = twilio.message_status(sid, "delivered")
    assert answer.status_code == 204
    after = api.get(f"/api/v1/messages/{shown['id']}").json()
    assert after["state"] == "delivered"
    assert after["events"][-1]["details"]["provider_status"] == "delivered"


def test_a_long_sms_goes_whole_and_its_segments_are_recorded(api: Any, twilio: Any, send_body: Any,
                                                            world: dict[str, str]) -> None:
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        approve_communication(s, key="long-notice", channels=["sms"], content={"sms": {
            "es": {"text": "Aviso largo " + "de prueba " * 40 + "{{ data.invoice }}"},
            "en": {"text": "Long notice {{ data.invoice }}"}}})
    shown = _send(api, send_body, communication="long-notice")
    assert shown["state"] == "accepted"
    form = parse_qs(twilio.requests[0].body.decode())
    assert len(form["Body"][0]) > 400
    assert next(e for e in shown["events"] if e["state"] == "accepted")["details"]["segments"] == 3


@pytest.mark.parametrize("forgery", ["tampered", "missing", "other-token"])
def test_a_forged_status_callback_is_refused_and_changes_nothing(
        api: Any, twilio: Any, send_body: Any, world: dict[str, str], forgery: str) -> None:
    from tests.fakes.twilio import sign

    shown = _send(api, send_body)
    sid = shown["provider_message_id"]
    if forgery == "tampered":  # signed as "delivered", sent as "failed" with an error code
        answer = twilio.message_status(sid, "delivered", tamper={"MessageStatus": "failed", "SmsStatus": "failed"})
    elif forgery == "missing":
        answer = twilio.message_status(sid, "delivered", signature="")
    else:
        url = f"{BASE}/hooks/twilio/twilio/status"
        answer = twilio.message_status(sid, "delivered", signature=sign("not-the-token", url, [("MessageSid", sid)]))
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "bad_signature"
    assert api.get(f"/api/v1/messages/{shown['id']}").json()["state"] == "accepted"


def test_the_signature_covers_the_configured_url_not_the_one_reached(api: Any, twilio: Any, send_body: Any,
                                                                    world: dict[str, str]) -> None:
    sid = _send(api, send_body)["provider_message_id"]
    message = twilio.messages[sid]
    # Twilio posts to (and signs) the URL it was given; here the same path on the port we listen on.
    message["status_callback"] = message["status_callback"].replace(BASE, twilio.deliver_to)
    assert twilio.message_status(sid, "delivered").status_code == 403


def test_an_unknown_number_fails_for_good_and_is_suppressed(api: Any, twilio: Any, send_body: Any,
                                                           world: dict[str, str]) -> None:
    shown = _send(api, send_body)
    assert twilio.message_status(shown["provider_message_id"], "undelivered", error_code=30005).status_code == 204
    after = api.get(f"/api/v1/messages/{shown['id']}").json()
    assert after["state"] == "failed" and "30005" in after["last_error"]
    assert _suppressed(world, api, send_body)


def test_an_unreachable_handset_fails_without_suppressing(api: Any, twilio: Any, send_body: Any,
                                                         world: dict[str, str]) -> None:
    shown = _send(api, send_body)
    twilio.message_status(shown["provider_message_id"], "undelivered", error_code=30003)
    assert api.get(f"/api/v1/messages/{shown['id']}").json()["state"] == "failed"
    assert not _suppressed(world, api, send_body)


def test_a_stop_to_our_number_suppresses_and_the_next_sms_is_refused(api: Any, twilio: Any, send_body: Any,
                                                                     world: dict[str, str]) -> None:
    url = f"{BASE}/hooks/twilio/twilio/inbound"
    answer = twilio.incoming(url, sender="+34612345678", body="STOP", sid="SM" + "1" * 32)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    assert answer.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert twilio.incoming(url, sender="+34612345678", body="STOP", sid="SM" + "1" * 32).status_code == 200
    assert _suppressed(world, api, send_body)
    timeline = api.get(f"/api/v1/customers/{world['customer_id']}/timeline").json()
    received = [e for e in timeline["items"] if e["kind"] == "message_received"]
    assert [e["properties"]["text"] for e in received] == ["STOP"]  # the repeated webhook stored once


def test_a_message_from_an_unknown_number_makes_a_profile_with_its_message(api: Any, twilio: Any,
                                                                          world: dict[str, str]) -> None:
    from trato.core.db import unit_of_work
    from trato.customers import service as customers

    answer = twilio.incoming(f"{BASE}/hooks/twilio/twilio/inbound", sender="+34699111222",
                             body="Hola, <b>¿mi pedido?</b>", media=["https://api.twilio.com/media/ME1"])
    assert answer.status_code == 200
    with unit_of_work() as s:
        someone = customers.lookup(s, kind="phone", value="+34699111222")
        (entry,) = customers.timeline(s, customer_id=someone.id, kinds=["message_received"])
    assert someone.id != world["customer_id"]
    assert entry.properties["text"] == "Hola, <b>¿mi pedido?</b>" and entry.channel == "sms"
    assert entry.properties["media"] == [{"url": "https://api.twilio.com/media/ME1", "content_type": "image/jpeg"}]
    forged = twilio.incoming(f"{BASE}/hooks/twilio/twilio/inbound", sender="+34699333444", body="x", signature="")
    assert forged.status_code == 403


def test_a_call_reads_the_voice_script_and_its_status_comes_back(api: Any, twilio: Any, send_body: Any,
                                                                world: dict[str, str]) -> None:
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        approve_communication(s, key="invoice-call", channels=["voice"], content={"voice": {
            "es": {"ssml": '<speak>Hola {{ customer.first_name }}. <break time="300ms"/>'
                           '<prosody rate="slow">Tu factura {{ data.invoice }}</prosody> está lista.'
                           '<mark name="end"/></speak>'},
            "en": {"ssml": "<speak>Hi {{ customer.first_name }}.</speak>"}}})
    shown = api.post("/api/v1/messages", json=send_body(communication="invoice-call", channels=["voice"],
                                                        data={"invoice": "F-1 & <2>"})).json()
    shown = api.get(f"/api/v1/messages/{shown['id']}").json()
    assert shown["state"] == "accepted", shown
    sid = shown["provider_message_id"]
    call = twilio.calls[sid]
    assert call["twiml"] == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="es-ES" voice="Polly.Lucia-Neural">'
        'Hola Ana. <break time="300ms"/><prosody rate="slow">Tu factura F-1 &amp; &lt;2&gt;</prosody> está lista.'
        "</Say></Response>")
    assert call["status_callback"] == f"{BASE}/hooks/twilio_voice/twilio/call-status"
    assert call["events"] == ["answered", "completed"]
    assert twilio.call_status(sid, "ringing").status_code == 204
    assert twilio.call_status(sid, "completed", duration=42).status_code == 204
    after = api.get(f"/api/v1/messages/{shown['id']}").json()
    assert after["state"] == "delivered"
    assert after["events"][-1]["details"]["duration"] == "42"


def test_a_busy_line_is_a_failed_call_without_suppression(api: Any, twilio: Any, send_body: Any,
                                                          world: dict[str, str]) -> None:
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        approve_communication(s, key="invoice-call", channels=["voice"], content={"voice": {
            "es": {"ssml": "<speak>Hola {{ customer.first_name }}.</speak>"},
            "en": {"ssml": "<speak>Hi {{ customer.first_name }}.</speak>"}}})
    first = api.post("/api/v1/messages", json=send_body(communication="invoice-call", channels=["voice"])).json()
    sid = api.get(f"/api/v1/messages/{first['id']}").json()["provider_message_id"]
    twilio.call_status(sid, "busy")
    after = api.get(f"/api/v1/messages/{first['id']}").json()
    assert after["state"] == "failed" and after["last_error"] == "call busy"
    again = api.post("/api/v1/messages", json=send_body(communication="invoice-call", channels=["voice"])).json()
    assert again["state"] != "refused"


def test_a_twilio_outage_is_retried_and_a_lost_answer_is_possibly_sent(api: Any, twilio: Any, send_body: Any,
                                                                       world: dict[str, str]) -> None:
    twilio.fail_next(status=503, retry_after="30")
    retrying = _send(api, send_body)
    assert retrying["state"] == "retrying" and "503" in retrying["last_error"]
    twilio.fail_next("drop")
    lost = _send(api, send_body)
    assert lost["state"] == "possibly_sent"  # Twilio may have it: never sent again by itself
    assert len(twilio.requests) == 2


def test_an_invalid_number_at_twilio_fails_the_message_for_good(api: Any, twilio: Any, send_body: Any,
                                                               world: dict[str, str]) -> None:
    twilio.reject["+34612345678"] = (400, 21614)
    failed = _send(api, send_body)
    assert failed["state"] == "failed" and "21614" in failed["last_error"]
    assert failed["attempts"] == 1


def test_a_callback_for_a_provider_that_cannot_be_set_up_is_not_served(
        client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from trato.delivery.channels import registry

    monkeypatch.setenv("TRATO_CHANNEL_PROVIDERS", "sms=twilio")  # chosen, but no account given
    previous = registry.use("sms", None)
    try:
        answer = client.post("/hooks/twilio/twilio/status", data={"MessageSid": "SM1", "MessageStatus": "delivered"})
    finally:
        registry.use("sms", previous)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "provider_not_found"
