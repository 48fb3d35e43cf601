"""Every channel rendered from one version: what each channel's customer receives."""

from __future__ import annotations

import base64

import orjson

from tests.content.factory import CONTENT, make_communication
from trato.content import preview, service

ALL_CHANNELS = {
    **CONTENT,
    "whatsapp": {"es": {"mode": "template", "template_name": "factura_disponible", "category": "utility",
                        "header": "Factura {{1}}", "header_params": ["{{ data.invoice }}"],
                        "body": "Hola {{1}}, tu factura de {{2}} está disponible.",
                        "params": ["{{ customer.first_name }}", "{{ data.amount|money }}"],
                        "buttons": [{"type": "url", "text": "Ver factura", "url": "https://example.com/f/{{1}}",
                                     "url_param": "{{ data.invoice }}"}]}},
    "push": {"es": {"title": "Factura {{ data.invoice }}", "body": "{{ data.amount|money }}",
                    "deep_link": "trato://facturas/{{ data.invoice }}"}},
    "voice": {"es": {"ssml": "<speak>Hola {{ customer.first_name }}. Su factura es de "
                             "<say-as interpret-as='currency'>{{ data.amount }} EUR</say-as>.</speak>"}},
    "letter": {"es": {"title": "Factura {{ data.invoice }}",
                      "body_html": "<p>Estimada {{ customer.first_name }}:</p><p>Le adjuntamos la factura "
                                   "{{ data.invoice }} por {{ data.amount|money }}.</p>"}},
    "web": {"es": {"html": "<div class='banner'>{{ customer.first_name }}, tu factura está lista</div>"}},
}


def test_every_channel_renders_for_the_sample_profile(session):
    communication = make_communication(session, content=ALL_CHANNELS, languages=["es"],
                                       channels=list(ALL_CHANNELS), sample_data={"invoice": "F-1", "amount": 48.2})
    out = preview.preview(session, communication=communication)["channels"]
    assert set(out) == set(ALL_CHANNELS) and not [c for c, v in out.items() if "error" in v]
    assert out["sms"]["parts"]["text"] == "Hola Lucía: tu factura F-1 ya está disponible."
    assert out["email"]["parts"]["subject"] == "Tu factura F-1"
    assert "de 48,20 € está lista" in out["email"]["parts"]["text"]
    bubble = out["whatsapp"]["preview"]
    assert bubble["header"]["text"] == "Factura F-1"
    assert bubble["body"] == "Hola Lucía, tu factura de 48,20\xa0€ está disponible."
    payload = out["whatsapp"]["payload"]
    assert payload["to"] == "34612345678" and payload["template"]["name"] == "factura_disponible"
    assert payload["template"]["components"][-1] == {
        "type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "F-1"}]}
    assert out["push"]["parts"] == {"title": "Factura F-1", "body": "48,20\xa0€", "deep_link": "trato://facturas/F-1"}
    assert out["voice"]["parts"]["ssml"].startswith("<speak>Hola Lucía.")
    assert out["voice"]["spoken"] == "Hola Lucía. Su factura es de 48.2 EUR."
    pdf = base64.b64decode(out["letter"]["parts"]["pdf"])
    assert pdf.startswith(b"%PDF") and len(out["letter"]["page_images"]) == 1
    assert base64.b64decode(out["letter"]["page_images"][0]).startswith(b"\x89PNG")
    assert "tu factura está lista" in out["web"]["parts"]["html"]


def test_reproduce_gives_the_same_bytes_for_every_channel(session):
    communication = make_communication(session, content=ALL_CHANNELS, languages=["es"])
    for channel in ALL_CHANNELS:
        first = service.render(session, communication=communication, channel=channel)
        again = service.reproduce(session, version_id=first.version_id, channel=channel, language=first.language,
                                  context=orjson.loads(orjson.dumps(first.context)))
        assert again == first.parts, channel


def test_html_channels_escape_what_customers_typed(session):
    communication = make_communication(session, content=ALL_CHANNELS, languages=["es"])
    rendered = service.render(session, communication=communication, channel="web",
                              sample={"first_name": "<img src=x onerror=alert(1)>"})
    assert "<img" not in rendered.parts["html"] and "&lt;img" in rendered.parts["html"]


def test_sms_keeps_gsm7_when_locale_formats_add_no_break_spaces(session):
    from trato.content import sms

    content = {"sms": {"es": {"text": "Factura {{ data.invoice }}: {{ data.amount|money }}"}}}
    communication = make_communication(session, content=content, languages=["es"], channels=["sms"])
    text = service.render(session, communication=communication, channel="sms").parts["text"]
    assert text == "Factura F-2026-001: 49,90 €" and sms.analyse(text).encoding == "GSM-7"


def test_preflight_checks_push_and_voice_with_the_kit(session):
    content = {"push": {"es": {"title": "x" * 80, "body": "Hola", "deep_link": "javascript:alert(1)"}},
               "voice": {"es": {"ssml": "<p>Hola {{ customer.first_name }}</p>"}}}
    communication = make_communication(session, content=content, languages=["es"], channels=["push", "voice"])
    codes = {(f.code, f.severity) for f in service.preflight(session, version_id=communication.latest_version_id)}
    assert {("push.title_long", "warning"), ("push.deep_link", "error"), ("voice.ssml_root", "error")} <= codes


def test_letters_take_segments_address_object_or_flat_traits():
    from trato.content.channel_parts import address_lines

    assert address_lines({"first_name": "Ana", "last_name": "Ruiz", "address": {
        "street": "Calle Mayor 1", "postalCode": "28013", "city": "Madrid", "country": "España"}}) == [
        "Ana Ruiz", "Calle Mayor 1", "28013 Madrid", "España"]
    assert address_lines({"first_name": "Ana", "address": "Calle Mayor 1", "postal_code": "28013",
                          "city": "Madrid"}) == ["Ana", "Calle Mayor 1", "28013 Madrid"]
    assert address_lines({"first_name": "Ana", "city": "Madrid"}) == []
