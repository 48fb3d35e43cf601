"""Spanish and English: choosing the language, complete catalogues, locale-aware formatting."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.console.conftest import csrf_of

SRC = Path(__file__).resolve().parents[2] / "src" / "trato"


def test_lang_query_switches_and_is_remembered(signed_in):
    spanish = signed_in.get("/customers").text
    assert "<h1>Clientes</h1>" in spanish and "Cerrar sesión" in spanish and '<html lang="es">' in spanish

    english = signed_in.get("/customers?lang=en")
    assert "<h1>Customers</h1>" in english.text and "Sign out" in english.text and '<html lang="en">' in english.text
    assert "trato_lang=en" in english.headers["set-cookie"]
    assert "<h1>Customers</h1>" in signed_in.get("/customers").text

    assert "<h1>Clientes</h1>" in signed_in.get("/customers?lang=es").text
    assert "<h1>Clientes</h1>" in signed_in.get("/customers").text


def test_an_unknown_lang_is_ignored(signed_in):
    response = signed_in.get("/customers?lang=fr")
    assert "<h1>Clientes</h1>" in response.text
    assert "trato_lang" not in response.headers.get("set-cookie", "")


def test_the_language_links_keep_the_page_and_its_query(signed_in):
    html = signed_in.get("/customers?q=ana").text
    assert 'href="/customers?q=ana&amp;lang=en"' in html
    assert 'href="/customers?q=ana&amp;lang=es"' in html


def test_accept_language_is_used_when_nothing_else_says(client, database_url):
    assert "Sign in to trato" in client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,es;q=0.5"}).text
    assert "Inicia sesión en trato" in client.get("/", headers={"Accept-Language": "fr-FR,es;q=0.8,en;q=0.5"}).text
    assert "Inicia sesión en trato" in client.get("/", headers={"Accept-Language": "fr-FR"}).text  # the default


def test_a_users_own_language_applies_after_sign_in(client, database_url):
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        service.create_user(s, email="jane@example.com", name="Jane", password="a long password", role="viewer",
                            language="en", actor="test")
    form = client.get("/?lang=es")  # a language chosen on the sign-in page ...
    assert "Inicia sesión en trato" in form.text
    client.post("/", data={"csrf": csrf_of(form.text), "via": "password", "email": "jane@example.com",
                           "password": "a long password"})
    page = client.get("/customers").text  # ... gives way to the user's own
    assert "<h1>Customers</h1>" in page and "Viewer" in page
    assert "<h1>Clientes</h1>" in client.get("/customers?lang=es").text


def test_the_sign_in_page_speaks_both_languages(client, database_url):
    english = client.get("/?lang=en").text
    assert "With an API token" in english and "With e-mail and password" in english
    spanish = client.get("/?lang=es").text
    assert "Con un token de API" in spanish and "Con correo electrónico y contraseña" in spanish


def _used_messages() -> set[str | tuple[str, str]]:
    from babel.messages.extract import extract_from_dir

    method_map = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
    options_map = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                                            "lstrip_blocks": "true"}}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    return {message for _, _, message, _, _ in extract_from_dir(str(SRC), method_map, options_map, keywords)}


@pytest.mark.parametrize("lang", ["es", "en"])
def test_every_message_shown_is_in_the_catalogue(lang):
    from babel.messages.pofile import read_po

    with (SRC / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=lang)
    used = _used_messages()
    assert used, "no messages found: the extraction is broken"
    missing = []
    for message in used:
        key = message[0] if isinstance(message, tuple) else message
        entry = catalog.get(key)
        if entry is None or entry.fuzzy or not entry.string or (
            isinstance(entry.string, tuple) and not all(entry.string)
        ):
            missing.append(message)
    assert not missing, f"untranslated in {lang}: {missing}"
    problems = [m.id for m in catalog if m.id and m.check()]
    assert not problems, problems  # placeholders agree between id and translation


def test_gettext_falls_back_to_the_english_id():
    from trato.core import i18n

    assert i18n.gettext("es", "Customers") == "Clientes"
    assert i18n.gettext("en", "Customers") == "Customers"
    assert i18n.gettext("es", "A message nobody wrote") == "A message nobody wrote"
    assert i18n.gettext("fr", "Customers") == "Customers"
    assert i18n.ngettext("es", "%(num)s property", "%(num)s properties", 1) == "%(num)s propiedad"
    assert i18n.ngettext("es", "%(num)s property", "%(num)s properties", 3) == "%(num)s propiedades"


@pytest.mark.parametrize(("header", "expected"), [
    ("en-US,en;q=0.9", "en"), ("es-MX", "es"), ("fr, en;q=0.3, es;q=0.7", "es"), ("de", None),
    ("", None), (None, None), ("en;q=0, es;q=0.1", "es"), ("en;q=abc, es", "es"),
])
def test_accept_language_negotiation(header, expected):
    from trato.core.i18n import negotiate

    assert negotiate(header) == expected


def test_locale_aware_formatting():
    from trato.core import i18n

    moment = datetime(2026, 5, 1, 18, 30, tzinfo=UTC)
    madrid = ZoneInfo("Europe/Madrid")
    assert i18n.format_datetime(moment, "es", madrid) == "1 may 2026, 20:30"
    assert i18n.format_datetime(moment, "en", madrid).replace("\u202f", " ") == "May 1, 2026, 8:30 PM"
    assert i18n.format_datetime(moment, "es", ZoneInfo("America/Bogota")) == "1 may 2026, 13:30"
    assert i18n.format_day(date(1985, 4, 12), "es") == "12 de abril de 1985"
    assert i18n.format_money(123450, "es", "EUR") == "1.234,50\xa0€"
    assert i18n.format_money(123450, "en", "EUR") == "€1,234.50"
    assert i18n.format_money(5, "en", "USD") == "$0.05"
    assert i18n.format_number(12345, "es") == "12.345"
    assert i18n.currency_of("ES") == "EUR" and i18n.currency_of("US") == "USD" and i18n.currency_of("ZZ") == "EUR"
    assert i18n.territory_name("MX", "es") == "México"
    assert i18n.language_name("en-GB", "es").startswith("inglés")
    assert i18n.language_name("xx-nonsense", "es") == "xx-nonsense"
    assert i18n.zone("Not/AZone", "Europe/Madrid") == madrid
