"""SMS encoding, length and segments against the published tables and examples.

Limits: 3GPP TS 23.038 (GSM-7 default alphabet and extension table) and TS 23.040
(153 / 67 units per part of a concatenated message); examples as in Twilio's segment guide.
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trato.content.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    analyse,
    cost_estimate,
    personalisation_warning,
)

gsm_basic_text = st.text(alphabet=sorted(GSM7_BASIC), max_size=700)
any_text = st.text(max_size=500)


@pytest.mark.parametrize(
    ("text", "encoding", "length", "segments", "chars_left"),
    [
        ("", "GSM-7", 0, 0, 160),
        ("a" * 160, "GSM-7", 160, 1, 0),
        ("a" * 161, "GSM-7", 161, 2, 145),
        ("a" * 306, "GSM-7", 306, 2, 0),
        ("a" * 307, "GSM-7", 307, 3, 152),
        ("ж" * 70, "UCS-2", 70, 1, 0),
        ("ж" * 71, "UCS-2", 71, 2, 63),
        ("ж" * 134, "UCS-2", 134, 2, 0),
        ("ж" * 135, "UCS-2", 135, 3, 66),
        ("€" * 80, "GSM-7", 160, 1, 0),
        # 76 escape pairs fill 152 of a part's 153 units: the 77th starts the next part
        ("€" * 81, "GSM-7", 162, 2, 143),
        ("😀", "UCS-2", 2, 1, 68),
        ("😀" * 35, "UCS-2", 70, 1, 0),
        # 33 surrogate pairs per 67-unit part
        ("😀" * 36, "UCS-2", 72, 2, 61),
        ("Hola Ramón, tu cita es mañana", "UCS-2", 29, 1, 41),
        ("Hola Ana, tu cita es mañana", "GSM-7", 27, 1, 133),
    ],
)
def test_published_examples(text, encoding, length, segments, chars_left):
    result = analyse(text)
    assert (result.encoding, result.length, result.segments, result.chars_left) == (
        encoding, length, segments, chars_left)


@pytest.mark.parametrize("char", list("€^{}[]~|\\") + ["\f"])
def test_extension_characters_count_two(char):
    result = analyse("x" + char)
    assert result.encoding == "GSM-7"
    assert result.length == 3


def test_alphabet_tables_match_3gpp_sizes():
    # 128 positions minus ESC in the default alphabet; 10 characters in the extension table
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


def test_non_gsm_chars_are_distinct_in_order():
    result = analyse("¡Olá! Óscar, ¿qué tal? Ó 😀")
    assert result.non_gsm_chars == ("á", "Ó", "😀")


@given(gsm_basic_text)
def test_gsm_basic_segments_follow_the_formula(text):
    result = analyse(text)
    assert result.encoding == "GSM-7"
    assert result.length == len(text)
    if len(text) <= 160:
        assert result.segments == (1 if text else 0)
    else:
        assert result.segments == math.ceil(len(text) / 153)


@given(any_text)
def test_length_and_segments_are_consistent(text):
    result = analyse(text)
    gsm = all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)
    assert result.encoding == ("GSM-7" if gsm else "UCS-2")
    if gsm:
        assert result.length == len(text) + sum(c in GSM7_EXTENSION for c in text)
    else:
        assert result.length == len(text.encode("utf-16-le")) // 2
    single = 160 if gsm else 70
    part = 153 if gsm else 67
    if result.length > single:
        # a part may lose one unit to an unsplittable pair, never more
        assert math.ceil(result.length / part) <= result.segments
        assert result.segments <= math.ceil(result.length / (part - 1))
        assert 0 <= result.chars_left < part
    else:
        assert result.chars_left == single - result.length


def test_personalised_value_turning_message_ucs2_is_warned():
    template = "Hola {{ first_name }}, tu pedido sale hoy. Detalles: {{ url }}"
    finding = personalisation_warning(template, "Hola Zoë Martín, tu pedido sale hoy. Detalles: x")
    assert finding is not None
    assert finding.code == "sms.ucs2_by_value"
    assert finding.severity == "warning"
    assert finding.detail["non_gsm_chars"] == ["ë", "í"]
    assert finding.detail["gsm7_spelling"] == {"ë": "e", "í": "i"}
    assert finding.detail["template"]["encoding"] == "GSM-7"
    assert finding.detail["rendered"]["encoding"] == "UCS-2"


def test_no_warning_when_encoding_does_not_change():
    assert personalisation_warning("Hola {{ n }}", "Hola Ana") is None
    # a template that is already UCS-2 is the author's choice, not a value's surprise
    assert personalisation_warning("¿Cómo va, {{ n }}?", "¿Cómo va, Zoë?") is None


def test_cost_estimate_is_segments_times_price():
    assert cost_estimate(analyse("a" * 161), Decimal("0.0725")) == Decimal("0.1450")
    assert cost_estimate(analyse("ж" * 135), "0.05") == Decimal("0.15")
    assert cost_estimate(analyse(""), "0.05") == 0
    with pytest.raises(TypeError):
        cost_estimate(analyse("a"), 0.07)
