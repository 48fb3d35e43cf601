"""WhatsApp Cloud API payloads against recorded shapes, and the template checks."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trato.content.whatsapp import check_template, preview, template_message, text_message
from trato.core.errors import InvalidInput

FIXTURES = Path(__file__).parents[1] / "fixtures" / "whatsapp"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


INVOICE_PARAMS = {"header": ["F-2026-0042"], "body": ["Ana", "48,20 €", "5 de diciembre"],
                  "buttons": {"0": "a1b2c3"}}


@pytest.mark.parametrize(("name", "to", "params"), [
    ("invoice_ready", "+34 600 111 222", INVOICE_PARAMS),
    ("order_shipped", "+447700900123", {
        "header": {"link": "https://cdn.example.com/parcel.png"},
        "body": ["Sam", "#10443", "Friday"],
        "buttons": {0: "delivery-change:10443", 1: "STOP"}}),
    ("login_code", "5215512345678", {"body": ["482913"], "buttons": {"0": "482913"}}),
])
def test_template_messages_match_cloud_api_shapes(name, to, params):
    definition = fixture(f"{name}.template.json")
    assert check_template(definition, params) == []
    assert template_message(to, definition, params) == fixture(f"{name}.message.json")


def test_session_text_message():
    body = ("Gracias, Ana. Puedes ver el estado de tu pedido en "
            "https://tienda.example.com/p/10443")
    assert text_message("+34600111222", body, preview_url=True) == fixture(
        "session_text.message.json")
    with pytest.raises(InvalidInput) as error:
        text_message("+34600111222", "x" * 4097)
    assert error.value.code == "whatsapp.text_too_long"
    with pytest.raises(InvalidInput) as error:
        text_message("not a phone", "hola")
    assert error.value.code == "whatsapp.recipient"


def codes(definition, params=None) -> list[str]:
    return [f.code for f in check_template(definition, params)]


def test_missing_and_extra_values():
    definition = fixture("invoice_ready.template.json")
    findings = check_template(definition, {**INVOICE_PARAMS, "body": ["Ana"]})
    assert [f.code for f in findings] == ["whatsapp.missing_parameter"]
    assert findings[0].detail["missing"] == ["{{2}}", "{{3}}"]
    assert codes(definition, {**INVOICE_PARAMS, "body": ["a", "b", "c", "d"]}) == [
        "whatsapp.extra_parameter"]
    assert codes(definition, {**INVOICE_PARAMS, "buttons": {}}) == ["whatsapp.missing_parameter"]
    assert codes(definition, {**INVOICE_PARAMS, "buttons": {"0": "x", "1": "y"}}) == [
        "whatsapp.extra_parameter"]
    assert codes(definition, {**INVOICE_PARAMS, "header": []}) == ["whatsapp.missing_parameter"]
    with pytest.raises(InvalidInput) as error:
        template_message("+34600111222", definition, {**INVOICE_PARAMS, "body": ["Ana"]})
    assert error.value.code == "whatsapp.invalid_template"
    assert error.value.details[0]["code"] == "whatsapp.missing_parameter"


@pytest.mark.parametrize("value", ["", "  ", "two\nlines", "a\tb", "a     b"])
def test_values_the_cloud_api_refuses(value):
    definition = fixture("invoice_ready.template.json")
    params = {**INVOICE_PARAMS, "body": ["Ana", value, "5"]}
    assert codes(definition, params) in (["whatsapp.empty_parameter"],
                                         ["whatsapp.parameter_whitespace"])


def test_body_limit_with_and_without_values():
    definition = copy.deepcopy(fixture("invoice_ready.template.json"))
    body = definition["components"][1]
    body["text"] = "Hola {{1}}, " + "x" * 1020 + " fin"
    assert "whatsapp.body_too_long" in codes(definition)
    body["text"] = "Hola {{1}}, tu factura de {{2}} vence el {{3}}." + "x" * 960
    params = {**INVOICE_PARAMS, "body": ["Ana" * 10, "48,20 €", "5 de diciembre"]}
    assert codes(definition) == []
    assert codes(definition, params) == ["whatsapp.filled_body_too_long"]


def test_definition_limits():
    definition = copy.deepcopy(fixture("invoice_ready.template.json"))
    definition["name"] = "Invoice Ready"
    definition["category"] = "PROMOTIONAL"
    definition["components"][0]["text"] = "Factura {{1}} de {{2}}"
    definition["components"][1]["text"] = "Hola {{1}}, total {{3}}"
    definition["components"][2]["text"] = "Pie {{1}}"
    definition["components"][3]["buttons"] = [
        {"type": "URL", "text": "Un texto de botón demasiado largo", "url": "https://x.example/{{1}}/a"},
        {"type": "URL", "text": "b", "url": "https://x.example/b"},
        {"type": "URL", "text": "c", "url": "https://x.example/c"},
    ] + [{"type": "QUICK_REPLY", "text": str(i)} for i in range(8)]
    assert codes(definition) == [
        "whatsapp.name", "whatsapp.category", "whatsapp.header_variables",
        "whatsapp.variables_not_sequential", "whatsapp.variable_at_edge",
        "whatsapp.footer_variables", "whatsapp.too_many_buttons", "whatsapp.too_many_buttons",
        "whatsapp.button_text_too_long", "whatsapp.url_variable"]
    assert {f.severity for f in check_template(definition)} == {"error", "warning"}


def test_media_header_needs_https_link():
    definition = fixture("order_shipped.template.json")
    params = {"header": {"link": "http://cdn.example.com/p.png"}, "body": ["a", "b", "c"]}
    assert codes(definition, params) == ["whatsapp.header_media"]


def test_preview_fills_values():
    shown = preview(fixture("invoice_ready.template.json"), INVOICE_PARAMS)
    assert shown == {
        "header": {"format": "TEXT", "text": "Factura F-2026-0042"},
        "body": "Hola Ana, tu factura de 48,20 € ya está disponible. Se cargará en tu cuenta "
                "el día 5 de diciembre.",
        "footer": "Energía Ejemplo",
        "buttons": [{"type": "URL", "text": "Ver factura",
                     "url": "https://energia.example.com/f/a1b2c3"},
                    {"type": "PHONE_NUMBER", "text": "Llamar", "phone_number": "+34910000000"}],
    }


safe_value = st.text(alphabet=st.characters(blacklist_characters="\n\t\r",
                                            blacklist_categories=("Cs",)),
                     min_size=1, max_size=40).filter(lambda v: v.strip() and "     " not in v)


@given(st.lists(safe_value, min_size=0, max_size=6))
def test_value_count_decides_the_finding(values):
    definition = fixture("invoice_ready.template.json")
    found = codes(definition, {**INVOICE_PARAMS, "body": values})
    expected = ([] if len(values) == 3 else
                ["whatsapp.missing_parameter"] if len(values) < 3 else ["whatsapp.extra_parameter"])
    assert found == expected
    if not found:
        message = template_message("34600111222", definition, {**INVOICE_PARAMS, "body": values})
        body = message["template"]["components"][1]
        assert [p["text"] for p in body["parameters"]] == values
