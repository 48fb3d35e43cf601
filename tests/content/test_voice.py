"""SSML for voice calls: well-formed, <speak> root, no DOCTYPE or entities, sane content."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trato.content.voice import check_ssml, spoken_text
from trato.core.errors import InvalidInput

GOOD = ('<speak xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="es-ES">'
        "<p>Hola Ana.</p><p>Su factura de <say-as interpret-as=\"currency\">48,20 EUR</say-as>"
        ' vence mañana.<break time="500ms"/> Gracias por confiar en '
        '<sub alias="Energía Ejemplo">EE</sub>.</p></speak>')


def codes(text: str) -> list[str]:
    return [f.code for f in check_ssml(text)]


def test_valid_script_and_what_it_says():
    assert check_ssml(GOOD) == []
    assert spoken_text(GOOD) == ("Hola Ana. Su factura de 48,20 EUR vence mañana. Gracias por "
                                 "confiar en Energía Ejemplo.")


@pytest.mark.parametrize("script", [
    # billion laughs and an external entity: refused before anything is expanded
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
    "<speak>&lol2;</speak>",
    '<!DOCTYPE speak [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><speak>&xxe;</speak>',
    '<!DOCTYPE speak SYSTEM "http://example.com/ssml.dtd"><speak>x</speak>',
])
def test_doctype_and_entities_are_refused(script):
    assert codes(script) == ["voice.ssml_doctype"]
    with pytest.raises(InvalidInput) as error:
        spoken_text(script)
    assert error.value.code == "voice.ssml_doctype"


@pytest.mark.parametrize(("script", "expected"), [
    ("<speak>a < b</speak>", ["voice.ssml_invalid"]),
    ("<speak>Tom &amp; Jerry &nbsp;</speak>", ["voice.ssml_invalid"]),
    ("<speak><p>unclosed</speak>", ["voice.ssml_invalid"]),
    ("Hola Ana", ["voice.ssml_invalid"]),
    ("<p>Hola</p>", ["voice.ssml_root"]),
    ('<speak><break time="20s"/><break time="fast"/></speak>',
     ["voice.ssml_break", "voice.ssml_break"]),
    ('<speak><audio src="http://example.com/a.mp3"/></speak>', ["voice.ssml_audio"]),
    ("<speak><blink>x</blink></speak>", ["voice.ssml_unknown"]),
    ('<speak xmlns:amazon="http://www.amazon.com/ssml"><amazon:effect name="whispered">x'
     "</amazon:effect></speak>", []),
    ("<speak>" + "a" * 6000 + "</speak>", ["voice.ssml_long"]),
])
def test_findings(script, expected):
    assert codes(script) == expected


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=200))
def test_any_escaped_text_inside_speak_is_valid_and_spoken_as_written(text):
    script = f"<speak>{escape(text)}</speak>"
    assert check_ssml(script) == []
    assert spoken_text(script) == " ".join(text.split())
