"""Languages of the console: gettext catalogues and locale-aware dates, numbers and money.

The catalogues are the ``.po`` files under ``trato/locale/<lang>/LC_MESSAGES/messages.po``,
read with Babel when first needed (:func:`load_catalogues` does it at start-up), so there is no
compile step. Message ids are English; a message missing from a catalogue shows its id.
"""

from __future__ import annotations

import io
import threading
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.dates import format_time as babel_format_time
from babel.dates import get_datetime_format
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, get_territory_currencies
from babel.support import NullTranslations, Translations
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from trato.core.clock import as_utc

LANGUAGES = ("es", "en")
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"

_lock = threading.Lock()
_catalogues: dict[str, NullTranslations] = {}


def N_(message: str) -> str:
    """Mark a message for the catalogue where it is defined; it is translated where shown."""
    return message


def _read(lang: str) -> NullTranslations:
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=lang, domain=DOMAIN)
    # GNU gettext reads the binary form; building it in memory keeps the .po the only artefact.
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def load_catalogues() -> None:
    """Read every language's catalogue now (start-up), so that a broken file stops the process."""
    with _lock:
        for lang in LANGUAGES:
            _catalogues[lang] = _read(lang)


def translations(lang: str) -> NullTranslations:
    """The catalogue of a supported language; unknown languages get the untranslated ids."""
    if lang not in LANGUAGES:
        return NullTranslations()
    with _lock:
        found = _catalogues.get(lang)
    if found is None:
        found = _read(lang)
        with _lock:
            _catalogues[lang] = found
    return found


def gettext(lang: str, message: str) -> str:
    """``message`` in ``lang``."""
    return translations(lang).gettext(message)


def ngettext(lang: str, singular: str, plural: str, n: int) -> str:
    """The singular or plural form of a message in ``lang``, chosen by ``n``."""
    return translations(lang).ngettext(singular, plural, n)


def negotiate(accept_language: str | None) -> str | None:
    """The first supported language in an ``Accept-Language`` header, by quality."""
    if not accept_language:
        return None
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().split("-")[0].lower()
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, position, primary))
    return min(choices)[2] if choices else None


# -- templates ---------------------------------------------------------------------------------


def install(env: Environment) -> None:
    """Enable ``{% trans %}`` and ``_()`` in templates; the language comes with each render.

    Templates look ``gettext``/``ngettext`` up in their context (see :func:`template_callables`),
    so one shared environment serves every language at once.
    """
    env.add_extension("jinja2.ext.i18n")
    env.newstyle_gettext = True  # type: ignore[attr-defined]


def template_callables(lang: str) -> dict[str, Any]:
    """``gettext`` and ``ngettext`` for a template context, escaping the values put into a message."""
    catalogue = translations(lang)

    @pass_context
    def template_gettext(context: Context, message: str, **variables: Any) -> str:
        text = catalogue.gettext(message)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables if variables else text

    @pass_context
    def template_ngettext(context: Context, singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        text = catalogue.ngettext(singular, plural, num)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    return {"gettext": template_gettext, "ngettext": template_ngettext}


# -- formatting --------------------------------------------------------------------------------


def zone(name: str | None, fallback: str) -> ZoneInfo:
    """The named IANA zone, or ``fallback`` when the name is missing or unknown."""
    for candidate in (name, fallback):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def format_datetime(value: datetime | None, lang: str, tz: ZoneInfo) -> str:
    """A moment as a person in ``tz`` reads it in ``lang``: medium date, short time."""
    if value is None:
        return ""
    local = as_utc(value).astimezone(tz)
    # Babel's own datetime formats join date and time this way; medium time would add seconds.
    pattern = get_datetime_format("medium", locale=lang).replace("'", "")
    return pattern.replace("{0}", babel_format_time(local, "short", locale=lang)).replace(
        "{1}", babel_format_date(local, "medium", locale=lang)
    )


def format_day(value: date | None, lang: str) -> str:
    """A calendar date (birthday, customer since) with the month written out."""
    if value is None:
        return ""
    return babel_format_date(value, "long", locale=lang)


def format_number(value: int | float | Decimal | None, lang: str) -> str:
    if value is None:
        return ""
    return format_decimal(value, locale=lang)


def format_money(cents: int | None, lang: str, currency: str) -> str:
    """An amount kept in cents, as money in ``lang`` (``1.234,50 €`` / ``€1,234.50``)."""
    if cents is None:
        return ""
    return format_currency(Decimal(cents) / 100, currency, locale=lang)


def currency_of(region: str) -> str:
    """The currency in use in a country (ISO 3166 code), EUR when Babel does not know it."""
    try:
        found = get_territory_currencies(region.upper())
    except (UnknownLocaleError, ValueError):
        found = []
    return found[0] if found else "EUR"


def territory_name(code: str | None, lang: str) -> str:
    """A country's name in ``lang`` (``ES`` → ``España`` / ``Spain``); the code when unknown."""
    if not code:
        return ""
    return Locale.parse(lang).territories.get(code.upper(), code)


def language_name(tag: str | None, lang: str) -> str:
    """A language tag's name in ``lang`` (``es-MX`` → ``español (México)``); the tag when unknown."""
    if not tag:
        return ""
    try:
        return Locale.parse(tag.replace("-", "_")).get_display_name(lang) or tag
    except (UnknownLocaleError, ValueError, TypeError):
        return tag
