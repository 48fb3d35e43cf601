"""The WhatsApp adapter against Meta's Cloud API faked on loopback: what it sends when, how each
Graph error and each network fault is classified, its one-line settings and its connection test."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import meta as fake_meta
from trato.content.channel_parts import whatsapp as render_whatsapp
from trato.content.channel_parts import whatsapp_definition
from trato.core.clock import iso, utcnow
from trato.core.errors import ConfigurationError
from trato.delivery.channels.base import OutgoingMessage
from trato.delivery.channels.whatsapp import GraphError, WhatsAppCloud, WhatsAppSettings

VARIANT = {"mode": "template", "template_name": "cita_recordatorio", "category": "utility",
           "body": "Hola {{1}}, tu cita es el {{2}}.", "params": ["{{ name }}", "{{ day }}"]}
VALUES = {"params.0": "Ana", "params.1": "martes 9"}


def _parts(variant: dict[str, Any] = VARIANT) -> dict[str, str | bytes]:
    return render_whatsapp(None, "es", variant, lambda name, _source: VALUES.get(name, "x"),  # type: ignore[arg-type]
                           "+34 612 345 678")


def _message(parts: dict[str, str | bytes] | None = None, **metadata: Any) -> OutgoingMessage:
    return OutgoingMessage(message_id="msg_WA1", channel="whatsapp", recipient="+34612345678",
                           parts=parts if parts is not None else _parts(), customer_id="cus_ANA", metadata=metadata)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def meta() -> Iterator[fake_meta.FakeMeta]:
    fake = fake_meta.running()
    fake.reset()
    fake.register(whatsapp_definition(VARIANT, "es"))
    yield fake
    fake.reset()


def _settings(meta: fake_meta.FakeMeta, **changes: Any) -> WhatsAppSettings:
    values: dict[str, Any] = {"token": meta.token, "phone_number_id": meta.phone_number_id,
                              "app_secret": meta.app_secret, "base_url": meta.url, "timeout": 5}
    values.update(changes)
    return WhatsAppSettings(**values)


@pytest.fixture
def adapter(meta: fake_meta.FakeMeta) -> Iterator[WhatsAppCloud]:
    subject = WhatsAppCloud(_settings(meta))
    yield subject
    subject.close()


# -- what goes out -------------------------------------------------------------------------------


def test_a_template_is_sent_as_rendered_with_the_wamid_kept(adapter: WhatsAppCloud, meta: fake_meta.FakeMeta) -> None:
    result = adapter.send(_message())
    assert result.outcome == "accepted" and result.provider_message_id == meta.sent[0]["wamid"]
    assert meta.sent[0]["template"] == {"name": "cita_recordatorio", "language": {"code": "es"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "martes 9"}]}]}
    assert meta.sent[0]["to"] == "34612345678" and meta.sent[0]["messaging_product"] == "whatsapp"


@pytest.mark.parametrize(("last_inbound", "session_text", "expected"), [
    ("absent", True, ["template"]),                  # delivery did not say: the template is always allowed
    (None, True, ["template"]),                      # never wrote
    (timedelta(hours=25), True, ["template"]),       # wrote, but more than 24 hours ago
    (timedelta(hours=23), True, ["text", "template"]),
    (timedelta(hours=23), False, ["template"]),      # the operator wants templates always
])
def test_the_plan_follows_the_24_hour_window(meta: fake_meta.FakeMeta, last_inbound: Any, session_text: bool,
                                             expected: list[str]) -> None:
    subject = WhatsAppCloud(_settings(meta, session_text=session_text))
    metadata = {} if last_inbound == "absent" else {
        "last_inbound_at": None if last_inbound is None else iso(utcnow() - last_inbound)}
    plan = subject.plan(_message(**metadata))
    assert [kind for kind, _ in plan] == expected
    if expected[0] == "text":
        assert plan[0][1]["text"]["body"] == "Hola Ana, tu cita es el martes 9."


def test_a_session_message_needs_the_window(meta: fake_meta.FakeMeta, adapter: WhatsAppCloud) -> None:
    session = {"mode": "session", "text": "Hola"}
    parts = render_whatsapp(None, "es", session, lambda _n, s: s, "+34612345678")  # type: ignore[arg-type]
    closed = adapter.send(_message(parts, last_inbound_at=iso(utcnow() - timedelta(days=2))))
    assert (closed.outcome, closed.permanent) == ("refused", True) and "template" in (closed.error or "")
    assert meta.requests == []
    meta.open_windows.add("34612345678")
    assert adapter.send(_message(parts, last_inbound_at=iso(utcnow()))).outcome == "accepted"
    assert meta.sent[-1]["text"] == {"preview_url": False, "body": "Hola"}


def test_nothing_to_send_is_refused_for_good(adapter: WhatsAppCloud) -> None:
    for parts in ({}, {"payload": "not json", "template": "{}"}, {"text": "  "}):
        result = adapter.send(_message(parts))
        assert (result.outcome, result.permanent) == ("refused", True), parts


# -- Meta's errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code", "permanent", "least_wait"), [
    (400, 131026, True, None),    # undeliverable: not a WhatsApp user
    (400, 100, True, None),       # invalid parameter
    (400, 131047, True, None),    # outside the window, and a template was sent: nothing else to try
    (400, 132001, True, None),    # the template does not exist in that language
    (400, 130429, False, 1.0),    # throughput reached
    (400, 131056, False, 6.0),    # too many messages to this customer in a short time
    (400, 80007, False, 60.0),    # the account's rate limit
    (401, 190, False, None),      # the token expired: the message is fine, the operator renews the token
    (500, 2, False, None),        # Meta's service is temporarily unavailable
    (400, 131000, False, None),   # something went wrong at Meta
    (400, 999999, True, None),    # unknown code: a 4xx is final
    (503, 999999, False, None),   # unknown code: a 5xx may be retried
])
def test_graph_errors_are_classified_by_their_code(adapter: WhatsAppCloud, meta: fake_meta.FakeMeta, status: int,
                                                   code: int, permanent: bool, least_wait: float | None) -> None:
    meta.error_next(status, code, f"(#{code}) something", details="what Meta says")
    result = adapter.send(_message())
    assert result.outcome == "refused" and result.permanent is permanent
    assert f"WhatsApp error {code}" in (result.error or "") and "what Meta says" in (result.error or "")
    assert "fbtrace_id" in (result.error or "")
    if least_wait is not None:
        assert result.retry_after is not None and result.retry_after >= least_wait


def test_retry_after_from_meta_is_honoured(adapter: WhatsAppCloud, meta: fake_meta.FakeMeta) -> None:
    meta.error_next(429, 130429, "(#130429) Rate limit hit", headers={"Retry-After": "30"})
    result = adapter.send(_message())
    assert (result.outcome, result.permanent, result.retry_after) == ("refused", False, 30.0)


def test_what_the_fake_checks_is_what_meta_checks(adapter: WhatsAppCloud, meta: fake_meta.FakeMeta) -> None:
    meta.templates.clear()
    meta.register({**whatsapp_definition(VARIANT, "es"), "components": [
        {"type": "BODY", "text": "Hola {{1}}, tu cita es el {{2}} a las {{3}}."}]})
    mismatch = adapter.send(_message())
    assert mismatch.permanent and "132000" in (mismatch.error or "")
    meta.templates.clear()
    unknown = adapter.send(_message())
    assert unknown.permanent and "132001" in (unknown.error or "")
    expired = WhatsAppCloud(_settings(meta, token="EAAG-old")).send(_message())
    assert (expired.outcome, expired.permanent) == ("refused", False) and "190" in (expired.error or "")
    other_number = WhatsAppCloud(_settings(meta, phone_number_id="999")).send(_message())
    assert other_number.permanent and "100/33" in (other_number.error or "")


# -- faults ----------------------------------------------------------------------------------------


def test_no_answer_after_the_request_went_out_is_ambiguous(meta: fake_meta.FakeMeta) -> None:
    subject = WhatsAppCloud(_settings(meta, timeout=0.5))
    meta.hang_next()
    hung = subject.send(_message())
    assert hung.outcome == "ambiguous" and "ReadTimeout" in (hung.error or "")
    meta.drop_next()
    dropped = subject.send(_message())
    assert dropped.outcome == "ambiguous"
    meta.fail_next(fake_meta.Fault("error", 200, {"messaging_product": "whatsapp"}))
    no_id = subject.send(_message())
    assert no_id.outcome == "ambiguous" and "without a message id" in (no_id.error or "")
    assert meta.sent == []
    subject.close()


def test_nobody_listening_is_a_clear_refusal(meta: fake_meta.FakeMeta) -> None:
    subject = WhatsAppCloud(_settings(meta, base_url=f"http://127.0.0.1:{_free_port()}"))
    result = subject.send(_message())
    assert (result.outcome, result.permanent) == ("refused", False) and "unreachable" in (result.error or "")
    assert subject.check().ok is False


@settings(max_examples=200, deadline=None)
@given(status=st.sampled_from([400, 401, 403, 404, 408, 429, 500, 502, 503]),
       body=st.one_of(st.binary(max_size=64), st.builds(
           lambda code, sub, msg: json.dumps({"error": {"code": code, "error_subcode": sub, "message": msg}}).encode(),
           st.one_of(st.sampled_from([2, 100, 190, 130429, 131026, 131047, 131056]), st.integers(),
                     st.text(max_size=5), st.none()), st.one_of(st.integers(), st.none()),
           st.one_of(st.text(max_size=40), st.none()))))
def test_any_error_answer_is_classified_never_raised(status: int, body: bytes) -> None:
    response = httpx.Response(status, content=body, request=httpx.Request("POST", "https://graph.example/x"))
    result = GraphError.of(response).classify(response)
    assert result.outcome == "refused" and result.error and result.provider_message_id is None


# -- configuration and the connection test ----------------------------------------------------------


def test_settings_from_one_url() -> None:
    parsed = WhatsAppCloud.settings_from_url(
        "whatsapp://EAAG%2Fsecret@106540352242922?app_secret=s3cr3t&verify_token=vt&version=v22.0"
        "&base_url=http://127.0.0.1:8081")
    assert parsed.token.get_secret_value() == "EAAG/secret" and parsed.phone_number_id == "106540352242922"
    assert parsed.app_secret is not None and parsed.app_secret.get_secret_value() == "s3cr3t"
    assert (parsed.version, parsed.base_url) == ("v22.0", "http://127.0.0.1:8081")
    assert "s3cr3t" not in repr(parsed) and "EAAG" not in repr(parsed)
    default = WhatsAppCloud.settings_from_url("whatsapp://tok@123")
    assert (default.version, default.base_url, default.app_secret) == ("v21.0", "https://graph.facebook.com", None)


@pytest.mark.parametrize(("url", "says"), [
    ("twilio://tok@123", "whatsapp://"),
    ("whatsapp://123", "access token"),
    ("whatsapp://tok@+34612345678", "phone number id"),
    ("whatsapp://tok@123?version=21", "v21.0"),
    ("whatsapp://tok@123?colour=red", "colour"),
    ("whatsapp://tok@123?base_url=ftp://x", "base URL"),
])
def test_a_wrong_url_names_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        WhatsAppCloud.settings_from_url(url)
    assert says in error.value.message and error.value.setting == "whatsapp"


def test_the_adapter_cannot_start_without_settings() -> None:
    with pytest.raises(ConfigurationError):
        WhatsAppCloud()


def test_check_reads_the_phone_number_without_sending(adapter: WhatsAppCloud, meta: fake_meta.FakeMeta) -> None:
    found = adapter.check()
    assert found.ok and "Banco Ejemplo" in found.detail and "GREEN" in found.detail
    assert meta.requests[-1][:2] == ("GET", f"/v21.0/{meta.phone_number_id}") and meta.sent == []
    expired = WhatsAppCloud(_settings(meta, token="EAAG-old")).check()
    assert not expired.ok and "token" in expired.detail


def test_the_webhook_signature_is_the_hmac_of_the_exact_bytes(meta: fake_meta.FakeMeta) -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    expected = hmac.new(meta.app_secret.encode(), body, hashlib.sha256).hexdigest()
    assert meta.sign(body) == f"sha256={expected}"


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=200), flip=st.integers(min_value=0, max_value=199))
def test_only_the_exact_signed_bytes_pass(body: bytes, flip: int) -> None:
    from trato.delivery.callbacks.meta import verify
    from trato.delivery.errors import ForgedCallback

    subject = WhatsAppCloud(WhatsAppSettings(token="t", phone_number_id="1", app_secret="app-secret"))
    header = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    verify(subject, body, header)
    verify(subject, body, header.upper().replace("SHA256=", "sha256="))  # hex in either case
    changed = bytearray(body or b"x")
    changed[flip % len(changed)] ^= 0x01
    with pytest.raises(ForgedCallback):
        verify(subject, bytes(changed), header)
    with pytest.raises(ForgedCallback):
        verify(WhatsAppCloud(WhatsAppSettings(token="t", phone_number_id="1")), body, header)  # no secret set
