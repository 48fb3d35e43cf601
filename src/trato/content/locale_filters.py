"""Locale-aware template filters (Babel): ``date``, ``datetime``, ``money`` and ``number`` read the
render context's ``locale`` (``es_ES``, ``en_GB`` ...), ``timezone`` and ``company.currency``.

Values come as the JSON of a render context: ISO 8601 text for dates and times, numbers or
numeric text for amounts (in the currency's units: ``49.9``, not cents).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
)
from jinja2 import Undefined, pass_context
from jinja2.runtime import Context

from trato.core.clock import parse_timestamp
from trato.core.i18n import zone


def _locale(context: Context) -> Locale:
    return _parsed(str(context.get("locale") or context.get("lang") or "es"))


@lru_cache(maxsize=512)
def _parsed(tag: str) -> Locale:
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse("es")


def _defined(value: Any) -> None:
    # A missing variable reaches a filter as Undefined: report it by name, as the template would.
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()


def _moment(value: Any, what: str) -> datetime | date:
    _defined(value)
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return date.fromisoformat(value.strip())
    parsed = parse_timestamp(value)
    if parsed is None:
        raise ValueError(f"{what}: {value!r} is not a date or time (use ISO 8601, e.g. 2026-03-01)")
    return parsed


@pass_context
def date_filter(context: Context, value: Any, format: str = "medium") -> str:  # noqa: A002
    moment = _moment(value, "date")
    if isinstance(moment, datetime):
        moment = moment.astimezone(zone(context.get("timezone"), "UTC")).date()
    return format_date(moment, format, locale=_locale(context))


@pass_context
def datetime_filter(context: Context, value: Any, format: str = "medium") -> str:  # noqa: A002
    moment = _moment(value, "datetime")
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    return format_datetime(moment, format, tzinfo=zone(context.get("timezone"), "UTC"), locale=_locale(context))


def _decimal(value: Any, what: str) -> Decimal:
    _defined(value)
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{what}: {value!r} is not a number") from None


@lru_cache(maxsize=512)
def _money_format(locale: Locale, code: str) -> Callable[[Decimal], str] | None:
    """Babel's standard currency pattern for ``locale`` and ``code`` turned into a small function,
    or None when the pattern is one this shortcut does not cover (Babel then formats).

    ``format_currency`` works the pattern out again on every call — about 60 µs, most of a
    campaign message's rendering when its template shows a few amounts. This does the same
    steps as ``NumberPattern.apply`` for a plain pattern (sign prefixes and suffixes with the
    currency symbol in them, the currency's digits, half-even rounding, primary and secondary
    grouping): the tests compare it with Babel over random amounts, locales and currencies.
    """
    pattern = locale.currency_formats["standard"]
    if pattern.exp_prec or pattern.scale or "@" in pattern.pattern or pattern.number_pattern == "":
        return None
    affixes = pattern.prefix + pattern.suffix
    if any("¤¤¤" in a or "'" in a for a in affixes):
        return None

    def affix(text: str) -> str:
        return text.replace("¤¤", code.upper()).replace("¤", get_currency_symbol(code, locale))

    (plus_prefix, minus_prefix), (plus_suffix, minus_suffix) = (
        [affix(a) for a in pattern.prefix], [affix(a) for a in pattern.suffix])
    digits = get_currency_precision(code)
    quantum = Decimal(1).scaleb(-digits)
    group, point = get_group_symbol(locale, numbering_system="latn"), get_decimal_symbol(locale, numbering_system="latn")
    if "'" in group + point:  # Babel strips quote pairs from the whole text, digits included (de_CH)
        return None
    first, then = pattern.grouping
    least = pattern.int_prec[0]

    def money(value: Decimal) -> str:
        negative = value.is_signed()
        whole, _, fraction = f"{abs(value).normalize().quantize(quantum):f}".partition(".")
        whole = whole.rjust(least, "0")
        grouped, size = "", first
        while len(whole) > size:
            grouped, whole, size = group + whole[-size:] + grouped, whole[:-size], then
        number = whole + grouped + (point + fraction.ljust(digits, "0") if digits else "")
        return (minus_prefix + number + minus_suffix) if negative else (plus_prefix + number + plus_suffix)

    return money


@pass_context
def money_filter(context: Context, value: Any, currency: str | None = None) -> str:
    """An amount in the currency's units (``49.9``) as money in the customer's locale."""
    company = context.get("company") or {}
    code = str(currency or (company.get("currency") if isinstance(company, Mapping) else None) or "EUR")
    tag = str(context.get("locale") or context.get("lang") or "es")
    kind = type(value)
    key = (kind, value, code, tag) if (kind is int or kind is float) and value else None  # not 0.0 and -0.0 alike
    if key is not None:  # the same prices and amounts come back message after message
        found = _MONEY_MEMO.get(key)
        if found is not None:
            return found
    text = _money(value, code, _parsed(tag))
    if key is not None:
        if len(_MONEY_MEMO) >= MONEY_MEMO_SIZE:
            _MONEY_MEMO.clear()
        _MONEY_MEMO[key] = text
    return text


# Amounts (int and float only: the type is part of the key, so True never passes for 1) already
# formatted, by currency and locale tag; cleared when full.
MONEY_MEMO_SIZE = 4096
_MONEY_MEMO: dict[tuple[type, Any, str, str], str] = {}


def _money(value: Any, code: str, locale: Locale) -> str:
    amount = _decimal(value, "money")
    fast = _money_format(locale, code) if amount.is_finite() else None
    if fast is not None:
        try:
            return fast(amount)
        except InvalidOperation:  # more digits than the decimal context holds: Babel says what it does
            pass
    return format_currency(amount, code, locale=locale)


@pass_context
def number_filter(context: Context, value: Any, decimals: int | None = None) -> str:
    number = _decimal(value, "number")
    pattern = None if decimals is None else "#,##0" + ("." + "0" * max(0, min(int(decimals), 10)) if decimals else "")
    return format_decimal(number, format=pattern, locale=_locale(context))
