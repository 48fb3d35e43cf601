"""Locale-aware template filters (Babel): ``date``, ``datetime``, ``money`` and ``number`` read the
render context's ``locale`` (``es_ES``, ``en_GB`` ...), ``timezone`` and ``company.currency``.

Values come as the JSON of a render context: ISO 8601 text for dates and times, numbers or
numeric text for amounts (in the currency's units: ``49.9``, not cents).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from jinja2 import Undefined, pass_context
from jinja2.runtime import Context

from trato.core.clock import parse_timestamp
from trato.core.i18n import zone


def _locale(context: Context) -> Locale:
    tag = str(context.get("locale") or context.get("lang") or "es").replace("-", "_")
    try:
        return Locale.parse(tag)
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


@pass_context
def money_filter(context: Context, value: Any, currency: str | None = None) -> str:
    """An amount in the currency's units (``49.9``) as money in the customer's locale."""
    company = context.get("company") or {}
    code = currency or (company.get("currency") if isinstance(company, Mapping) else None) or "EUR"
    return format_currency(_decimal(value, "money"), str(code), locale=_locale(context))


@pass_context
def number_filter(context: Context, value: Any, decimals: int | None = None) -> str:
    number = _decimal(value, "number")
    pattern = None if decimals is None else "#,##0" + ("." + "0" * max(0, min(int(decimals), 10)) if decimals else "")
    return format_decimal(number, format=pattern, locale=_locale(context))
