"""SMS text: GSM-7 or UCS-2, length in code units, segments, characters left, cost.

Interface (stable; the content domain calls these):

- ``analyse(text) -> SmsAnalysis`` with ``encoding`` ("GSM-7" | "UCS-2"), ``length`` in code
  units (a GSM-7 extension character ``^{}\\[~]|€`` or form feed counts 2, UCS-2 counts
  UTF-16 units so an emoji outside the BMP counts 2), ``segments`` (one segment holds
  160 GSM-7 / 70 UCS-2 units; a concatenated message's segments hold 153 / 67 because of the
  6-byte UDH, and an escape pair or a surrogate pair is never split across two segments),
  ``chars_left`` (units still free in the last segment) and ``non_gsm_chars`` (the distinct
  characters that forced UCS-2, in order of appearance).
- ``personalisation_warning(template_text, rendered_text) -> Finding | None``: a warning
  when the template is GSM-7 but a personalised value made the message UCS-2 (a name like
  "Ramón" or "Zoë" can double the cost), with the characters to blame and any GSM-7 spelling.
- ``cost_estimate(analysis, price_per_segment) -> Decimal``: segments x price.

Tables from 3GPP TS 23.038 section 6.2.1 (default alphabet) and 6.2.1.1 (extension table).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Literal

from trato.content.findings import Finding

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
CONCATENATED = {"GSM-7": 153, "UCS-2": 67}

# Characters people type (or paste from a word processor) that have a GSM-7 spelling.
GSM7_SPELLING = {
    "á": "a", "í": "i", "ó": "o", "ú": "u", "Á": "A", "Í": "I", "Ó": "O", "Ú": "U",
    "ç": "Ç", "ê": "e", "ë": "e", "ï": "i", "ô": "o", "â": "a", "û": "u", "È": "E",
    "‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "«": '"', "»": '"',
    "–": "-", "—": "-", "…": "...", "\u00a0": " ", "\u2009": " ", "\t": " ",
}

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class SmsAnalysis:
    encoding: Encoding
    length: int
    segments: int
    chars_left: int
    non_gsm_chars: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"non_gsm_chars": list(self.non_gsm_chars)}


def is_gsm7(char: str) -> bool:
    return char in GSM7_BASIC or char in GSM7_EXTENSION


def _units(char: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def analyse(text: str) -> SmsAnalysis:
    """Encoding, length in code units, segments and characters left of an SMS text."""
    non_gsm = tuple(dict.fromkeys(c for c in text if not is_gsm7(c)))
    encoding: Encoding = "UCS-2" if non_gsm else "GSM-7"
    units = [_units(c, encoding) for c in text]
    length = sum(units)
    if length <= SINGLE[encoding]:
        return SmsAnalysis(encoding, length, 1 if length else 0, SINGLE[encoding] - length,
                           non_gsm)
    size = CONCATENATED[encoding]
    segments, used = 1, 0
    for unit in units:  # a character never straddles two segments
        if used + unit > size:
            segments, used = segments + 1, 0
        used += unit
    return SmsAnalysis(encoding, length, segments, size - used, non_gsm)


def personalisation_warning(template_text: str, rendered_text: str) -> Finding | None:
    """Warn when the template is GSM-7 but a personalised value turned the message UCS-2."""
    before, after = analyse(template_text), analyse(rendered_text)
    if before.encoding != "GSM-7" or after.encoding != "UCS-2":
        return None
    spellings = {c: GSM7_SPELLING[c] for c in after.non_gsm_chars if c in GSM7_SPELLING}
    return Finding(
        code="sms.ucs2_by_value",
        severity="warning",
        message=(
            f"A personalised value contains characters outside GSM-7 "
            f"({''.join(after.non_gsm_chars)!r}): the message is sent as UCS-2 in "
            f"{after.segments} segment(s) instead of GSM-7."
        ),
        detail={
            "non_gsm_chars": list(after.non_gsm_chars),
            "gsm7_spelling": spellings,
            "template": before.to_dict(),
            "rendered": after.to_dict(),
        },
    )


def cost_estimate(analysis: SmsAnalysis, price_per_segment: Decimal | str | int) -> Decimal:
    """Price of one message: its segments times the provider's price per segment.

    Prices are money: pass a Decimal or a string ("0.0725"); a float is refused because
    binary fractions do not add up to the cents an invoice shows.
    """
    if isinstance(price_per_segment, float):
        raise TypeError("price_per_segment must be a Decimal or a string, not a float")
    return Decimal(price_per_segment) * analysis.segments
