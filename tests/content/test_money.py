"""The money filter's shortcut formats exactly as Babel's ``format_currency`` does."""

from __future__ import annotations

from decimal import Decimal

from babel import Locale
from babel.numbers import format_currency
from hypothesis import given, settings
from hypothesis import strategies as st

from trato.content.locale_filters import _money_format
from trato.content.templating import render_source

LOCALES = ["es", "en", "es_ES", "es_MX", "es_AR", "es_CO", "en_US", "en_GB", "en_IN", "de_CH", "fr_FR", "nl_NL",
           "pt_BR", "ca_ES", "ja_JP", "ar_EG", "he_IL", "fa_IR", "sv_SE"]
CURRENCIES = ["EUR", "USD", "GBP", "MXN", "JPY", "CLP", "BHD", "INR", "CHF", "ARS", "XXX", "ZZZ"]
amounts = st.one_of(
    st.decimals(min_value=Decimal("-1e15"), max_value=Decimal("1e15"), allow_nan=False, allow_infinity=False),
    st.decimals(min_value=Decimal("-10"), max_value=Decimal("10"), places=4),
    st.integers(-10**12, 10**12).map(Decimal),
    st.sampled_from([Decimal("0.005"), Decimal("0.015"), Decimal("-0.001"), Decimal("-0"), Decimal("1E+3"),
                     Decimal("999999.995"), Decimal("1234.5"), Decimal("0.5"), Decimal("2.5")]))


@settings(max_examples=400, deadline=None)
@given(amount=amounts, tag=st.sampled_from(LOCALES), code=st.sampled_from(CURRENCIES))
def test_the_shortcut_formats_as_babel(amount: Decimal, tag: str, code: str) -> None:
    locale = Locale.parse(tag)
    fast = _money_format(locale, code)
    if fast is not None:
        assert fast(amount) == format_currency(amount, code, locale=locale)


def test_the_shortcut_covers_the_locales_we_write_in() -> None:
    for tag in ("es", "en", "es_ES", "en_GB", "en_US", "es_MX"):
        assert _money_format(Locale.parse(tag), "EUR") is not None


def test_the_filter_gives_the_same_text_either_way() -> None:
    context = {"locale": "es_ES", "company": {"currency": "EUR"}}
    assert render_source("{{ 1234.5|money }} {{ -0.004|money }} {{ 12|money('JPY') }}", context) == (
        "1.234,50\xa0€ -0,00\xa0€ 12\xa0JPY")


def test_amounts_formatted_before_come_back_the_same_and_each_locale_keeps_its_own() -> None:
    from trato.content import locale_filters

    locale_filters._MONEY_MEMO.clear()
    source = "{{ 1234.5|money }}|{{ 1234.5|money }}|{{ 1234|money }}|{{ 1234.0|money('USD') }}"
    spanish = render_source(source, {"locale": "es_ES", "company": {"currency": "EUR"}})
    english = render_source(source, {"locale": "en_GB", "company": {"currency": "EUR"}})
    assert spanish == "1.234,50\xa0€|1.234,50\xa0€|1.234,00\xa0€|1.234,00\xa0US$"
    assert english == "€1,234.50|€1,234.50|€1,234.00|US$1,234.00"
    assert len(locale_filters._MONEY_MEMO) == 6  # (type, amount, currency, locale): 1234 and 1234.0 apart


def test_zero_and_negative_zero_are_not_taken_for_each_other() -> None:
    context = {"locale": "es_ES", "company": {"currency": "EUR"}}
    for _ in range(2):
        assert render_source("{{ -0.0|money }} {{ 0.0|money }} {{ 0|money }}", context) == (
            f"{format_currency(Decimal('-0.0'), 'EUR', locale='es_ES')} 0,00\xa0€ 0,00\xa0€")


def test_the_memo_stays_bounded() -> None:
    from trato.content import locale_filters

    context = {"locale": "es_ES", "company": {"currency": "EUR"}}
    for amount in range(locale_filters.MONEY_MEMO_SIZE + 10):
        render_source("{{ amount|money }}", {**context, "amount": amount + 1})
    assert len(locale_filters._MONEY_MEMO) <= locale_filters.MONEY_MEMO_SIZE
    assert render_source("{{ 3|money }}", context) == "3,00\xa0€"
