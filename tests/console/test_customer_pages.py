"""Customer search and the 360° page, over HTTP, with data fed through the tracking API."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tests.console.conftest import ANA_EMAIL, customer_id_of, seed_ana, track

HX = {"HX-Request": "true"}


def _entries(html: str) -> list[str]:
    """The timeline entries' event names, in page order."""
    return [unescape(name) for name in re.findall(r'<strong class="event-name">([^<]*)</strong>', html)]


def _event_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'id="event-(\d+)"', html)]


@pytest.mark.parametrize("query", ["ana", "García", "ANA.GARCIA@", "+34612", "612 345", "u-an", "cus_"])
def test_search_finds_by_name_email_phone_identity_and_id(signed_in, write_key, query):
    customer_id = seed_ana(signed_in, write_key)
    if query == "cus_":
        query = customer_id
    page = signed_in.get("/customers", params={"q": query})
    assert page.status_code == 200
    assert f'href="/customers/{customer_id}"' in page.text
    assert "Ana García" in page.text
    assert ANA_EMAIL in page.text
    assert "+34612345678" in page.text


def test_search_results_show_the_columns(signed_in, write_key):
    seed_ana(signed_in, write_key)
    page = signed_in.get("/customers", params={"q": "ana", "lang": "en"}).text
    for header in ("Name", "E-mail", "Phone", "Country", "Last seen", "Events"):
        assert f">{header}</th>" in page
    assert "1 customer found." in page
    assert "Times in Europe/Madrid." in page
    # Last seen 2026-03-05 13:00 UTC is 14:00 in Madrid, in the viewer's language.
    assert "Mar 5, 2026, 2:00\u202fPM" in page or "Mar 5, 2026, 2:00 PM" in page
    assert re.search(r'<td class="num">5</td>', page)


def test_search_without_a_match_and_without_a_query(signed_in, write_key):
    seed_ana(signed_in, write_key)
    assert "Ningún cliente coincide con «zzz»." in signed_in.get("/customers?q=zzz").text
    empty = signed_in.get("/customers").text
    assert "Escribe el principio de un nombre" in empty
    assert "<table" not in empty


def test_htmx_search_answers_only_the_results(signed_in, write_key):
    customer_id = seed_ana(signed_in, write_key)
    fragment = signed_in.get("/customers", params={"q": "ana"}, headers=HX)
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section id="results"')
    assert "<html" not in fragment.text and "<header" not in fragment.text
    assert f"/customers/{customer_id}" in fragment.text
    # Going back in history asks for the whole page again.
    restore = signed_in.get("/customers", params={"q": "ana"},
                            headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text


def test_the_search_box_works_without_javascript(signed_in, database_url):
    page = signed_in.get("/customers").text
    form = re.search(r'<form class="search[^>]*>', page).group(0)
    assert 'method="get"' in form and 'action="/customers"' in form
    assert 'name="q"' in page and 'type="submit"' in page
    assert 'hx-get="/customers"' in page and "delay:" in page


def test_the_360_page_shows_every_section(signed_in, write_key):
    customer_id = seed_ana(signed_in, write_key)
    page = signed_in.get(f"/customers/{customer_id}", params={"lang": "en"})
    assert page.status_code == 200
    html = page.text
    for section in ('id="computed"', 'id="profile"', 'id="identities"', 'id="event-counts"', 'id="channels"',
                    'id="merges"', 'id="timeline"'):
        assert section in html, section
    # typed traits
    assert "<h1>Ana García</h1>" in html
    assert ANA_EMAIL in html and "+34612345678" in html
    assert "Spain" in html and "(ES)" in html
    assert "Spanish (Mexico)" in html and "(es-MX)" in html
    assert "America/Mexico_City" in html
    assert "April 12, 1985" in html and "June 1, 2019" in html
    # free traits
    assert ">plan</th><td>gold</td>" in html
    assert ">newsletter</th><td>true</td>" in html
    assert ">firstName</th>" not in html
    # identities and how they were linked
    identities = html[html.index('id="identities"'):html.index('id="channels"')]
    for kind in ("user_id", "email", "phone"):
        assert f'<span class="tag">{kind}</span>' in identities
    for label in ("Linked via", "Source", "Message id", "Original profile", "Linked at"):
        assert f"<dt>{label}</dt>" in identities
    assert "u-ana" in identities and "<dd>identify</dd>" in identities and "ana-1" in identities
    assert "this one" in identities
    # computed traits: money in the viewer's locale, last channel
    assert "€1,234.50" in html
    assert ">web<" in html
    # event counts per name, per-channel summary
    counts = html[html.index('id="event-counts"'):html.index('id="merges"')]
    assert "Order Completed" in counts and "Ticket Opened" in counts
    channels = html[html.index('id="channels"'):html.index('id="event-counts"')]
    assert "call_center" in channels and "email" in channels
    # times in the customer's own zone, labelled: 13:00 UTC is 07:00 in Mexico City
    assert "Times in the customer's time zone: America/Mexico_City." in html
    assert "Mar 5, 2026, 7:00" in html
    assert "No merges." in html


def test_the_360_page_in_spanish_formats_money_and_dates_for_spain(signed_in, write_key):
    customer_id = seed_ana(signed_in, write_key)
    html = signed_in.get(f"/customers/{customer_id}", headers={"Accept-Language": "es-ES,es;q=0.9"}).text
    assert "1.234,50\xa0€" in html
    assert "12 de abril de 1985" in html
    assert "España" in html
    assert "Horas en la zona horaria del cliente: America/Mexico_City." in html
    assert "5 mar 2026, 7:00" in html


def test_the_timeline_is_newest_first_and_filters_narrow_it(signed_in, write_key):
    customer_id = seed_ana(signed_in, write_key)
    url = f"/customers/{customer_id}"
    everything = signed_in.get(url).text
    assert _entries(everything) == ["Pricing", "Email Opened", "Ticket Opened", "Order Completed"]
    assert len(_event_ids(everything)) == 5  # and the identify call, which has no name

    # Facets offered are the values this customer has.
    filters = everything[everything.index('id="timeline-filters"'):everything.index('id="timeline"')]
    for value in ("call_center", "email", "web", "service", "marketing", "sales", 'value="purchase"',
                  'value="page"', 'value="identify"', 'value="track"'):
        assert value in filters, value
    assert 'value="sms"' not in filters

    by_channel = signed_in.get(url, params={"channel": "email"}).text
    assert _entries(by_channel) == ["Email Opened"]
    assert re.search(r'value="email" checked', by_channel)

    two_channels = signed_in.get(url, params=[("channel", "email"), ("channel", "call_center")]).text
    assert _entries(two_channels) == ["Email Opened", "Ticket Opened"]

    by_department = signed_in.get(url, params={"department": "service"}).text
    assert _entries(by_department) == ["Ticket Opened"]

    by_kind = signed_in.get(url, params={"kind": "purchase"}).text
    assert _entries(by_kind) == ["Order Completed"]
    assert "€" in by_kind

    nothing = signed_in.get(url, params={"kind": "purchase", "channel": "email"}).text
    assert _entries(nothing) == []
    assert "Ninguna entrada coincide con estos filtros." in nothing


def test_filters_by_htmx_answer_the_timeline_only(signed_in, write_key):
    customer_id = seed_ana(signed_in, write_key)
    fragment = signed_in.get(f"/customers/{customer_id}", params={"channel": "email"}, headers=HX).text
    assert fragment.lstrip().startswith('<div id="timeline"')
    assert "<html" not in fragment and 'id="profile"' not in fragment
    assert _entries(fragment) == ["Email Opened"]


def test_older_entries_page_by_before_id(signed_in, write_key):
    calls = [
        {"type": "track", "userId": "u-many", "messageId": f"many-{n}", "event": f"Step {n:03d}",
         "timestamp": f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z", "properties": {"n": n}}
        for n in range(120)
    ]
    calls.insert(0, {"type": "identify", "userId": "u-many", "messageId": "many-id",
                     "timestamp": "2025-12-31T00:00:00Z", "traits": {"email": "many@example.com"}})
    track(signed_in, write_key, calls)
    url = f"/customers/{customer_id_of('many@example.com')}"

    first = signed_in.get(url).text
    names = _entries(first)
    assert len(names) == 50 and names[0] == "Step 119" and names[-1] == "Step 070"
    older_link = re.search(r'<li class="more">\s*<a href="([^"]+)"', first).group(1)
    older_link = unescape(older_link)
    assert "before=" in older_link and 'hx-get="' in first

    # Without JavaScript: a whole page of the older entries, with a way back to the newest.
    second = signed_in.get(older_link).text
    assert _entries(second)[0] == "Step 069" and len(_entries(second)) == 50
    assert "Volver a las entradas más recientes" in second

    # With htmx: only the entries and the next "older" link, to replace the old link with.
    fragment = signed_in.get(older_link, headers=HX).text
    assert fragment.lstrip().startswith("<li")
    assert "<ol" not in fragment and "<html" not in fragment
    assert _entries(fragment) == _entries(second)

    third_link = unescape(re.search(r'<li class="more">\s*<a href="([^"]+)"', second).group(1))
    third = signed_in.get(third_link).text
    assert _entries(third)[-1] == "Step 000"
    assert len(_entries(third)) == 20
    assert '<li class="more">' not in third
    # every entry is seen once across the pages
    ids = _event_ids(first) + _event_ids(second) + _event_ids(third)
    assert len(ids) == len(set(ids)) == 121


def test_paging_keeps_the_filters(signed_in, write_key):
    calls = [
        {"type": "track", "userId": "u-f", "messageId": f"f-{n}", "event": f"Mail {n:03d}",
         "timestamp": f"2026-02-01T01:{n // 60:02d}:{n % 60:02d}Z",
         "properties": {"channel": "email" if n % 2 else "sms"}}
        for n in range(120)
    ]
    calls.append({"type": "identify", "userId": "u-f", "messageId": "f-id", "traits": {"email": "f@example.com"},
                  "timestamp": "2026-01-01T00:00:00Z"})
    track(signed_in, write_key, calls)
    url = f"/customers/{customer_id_of('f@example.com')}"
    first = signed_in.get(url, params={"channel": "email"}).text
    assert len(_entries(first)) == 50
    link = unescape(re.search(r'<li class="more">\s*<a href="([^"]+)"', first).group(1))
    assert "channel=email" in link
    second = _entries(signed_in.get(link, headers=HX).text)
    assert len(second) == 10
    assert all(int(name.split()[1]) % 2 for name in second)


def test_a_bad_cursor_shows_the_newest_entries(signed_in, write_key):
    customer_id = seed_ana(signed_in, write_key)
    page = signed_in.get(f"/customers/{customer_id}", params={"before": "not-a-number"})
    assert page.status_code == 200
    assert _entries(page.text)[0] == "Pricing"


def test_an_unknown_customer_is_a_translated_404_page(signed_in, database_url):
    spanish = signed_in.get("/customers/cus_DOESNOTEXIST")
    assert spanish.status_code == 404
    assert spanish.headers["content-type"].startswith("text/html")
    assert "Ningún cliente tiene este identificador." in spanish.text
    english = signed_in.get("/customers/cus_DOESNOTEXIST?lang=en")
    assert english.status_code == 404
    assert "No customer has this id." in english.text


def test_a_merged_profile_leads_to_the_survivor(signed_in, write_key):
    from trato.core.db import unit_of_work
    from trato.customers import service

    track(signed_in, write_key, [
        {"type": "identify", "anonymousId": "anon-1", "messageId": "m-1", "traits": {"email": "one@example.com"}},
        {"type": "identify", "anonymousId": "anon-2", "messageId": "m-2", "traits": {"email": "two@example.com"}},
    ])
    survivor, merged = customer_id_of("one@example.com"), customer_id_of("two@example.com")
    assert survivor != merged
    with unit_of_work() as s:
        service.merge(s, survivor_id=survivor, merged_id=merged, actor="test", explanation="same person, says Ana")
    response = signed_in.get(f"/customers/{merged}?lang=en", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/customers/{survivor}?lang=en"
    page = signed_in.get(response.headers["location"]).text
    merges = page[page.index('id="merges"'):]
    assert "Merged" in merges and "same person, says Ana" in merges and merged in merges


def test_customer_supplied_html_is_shown_as_text(signed_in, write_key):
    track(signed_in, write_key, [
        {"type": "identify", "userId": "u-x", "messageId": "x-1",
         "traits": {"firstName": "<script>alert(1)</script>", "email": "xss@example.com",
                    "nickname": "<img src=x onerror=alert(2)>"}},
        {"type": "track", "userId": "u-x", "messageId": "x-2", "event": "<b>Bold</b> event",
         "properties": {"comment": "<img src=x onerror=alert(3)>", "<i>key</i>": "v",
                        "channel": "<svg onload=alert(4)>"}},
    ])
    customer_id = customer_id_of("xss@example.com")
    pages = [
        signed_in.get(f"/customers/{customer_id}").text,
        signed_in.get("/customers", params={"q": "xss@"}).text,
        signed_in.get(f"/customers/{customer_id}", headers=HX).text,
    ]
    for html in pages:
        assert "<script>alert(1)</script>" not in html
        assert "<img src=x" not in html and "<svg onload" not in html and "<b>Bold</b>" not in html
    profile = pages[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in profile
    assert "&lt;img src=x onerror=alert(3)&gt;" in profile
    assert "&lt;i&gt;key&lt;/i&gt;" in profile
    assert "&lt;b&gt;Bold&lt;/b&gt; event" in profile
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]


def test_a_query_with_html_is_echoed_as_text(signed_in, database_url):
    html = signed_in.get("/customers", params={"q": '"><script>alert(1)</script>'}).text
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_timeline_facets_are_the_customers_own_values(signed_in, write_key, session):
    from trato.customers import service

    customer_id = seed_ana(signed_in, write_key)
    facets = service.timeline_facets(session, customer_id=customer_id)
    assert facets["channels"] == ["call_center", "email", "web"]
    assert facets["departments"] == ["marketing", "sales", "service"]
    assert facets["kinds"] == ["identify", "page", "purchase", "track"]
