"""The console in a real browser: what a person signing in, searching and reading a 360° sees."""

from __future__ import annotations

import re

import pytest

from tests.console.conftest import ANA_EMAIL, seed_ana, track

pytestmark = pytest.mark.browser
SCREENSHOT = "/tmp/trato-360.png"


def _sign_in(page, token: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    page.get_by_label("Token de administrador, editor o lector").fill(token)
    page.get_by_role("button", name="Entrar con el token").click()
    page.wait_for_url(re.compile(r"/customers$"))


def test_sign_in_search_open_filter_and_switch_language(page, client, admin_token, write_key):
    from playwright.sync_api import expect

    customer_id = seed_ana(client, write_key)
    track(client, write_key, [
        {"type": "identify", "userId": "u-anabel", "messageId": "anabel-1",
         "traits": {"firstName": "Anabel", "lastName": "Ruiz", "email": "anabel@example.com"}},
        {"type": "identify", "userId": "u-bruno", "messageId": "bruno-1",
         "traits": {"firstName": "Bruno", "email": "bruno@example.com"}},
    ])

    # Wrong token first: the form says so, in Spanish, and stays.
    page.goto("/")
    expect(page.get_by_role("heading", name="Inicia sesión en trato")).to_be_visible()
    page.get_by_label("Token de administrador, editor o lector").fill("trt_wrong")
    page.get_by_role("button", name="Entrar con el token").click()
    expect(page.get_by_role("alert")).to_contain_text("Este token de API no es válido")

    _sign_in(page, admin_token)
    expect(page.get_by_role("heading", name="Clientes")).to_be_visible()
    expect(page.get_by_text("test admin")).to_be_visible()

    # Results follow the typing (htmx), and the address bar keeps the query.
    search = page.get_by_role("searchbox")
    search.press_sequentially("an", delay=30)
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(2)
    search.press_sequentially("a.g", delay=30)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(ANA_EMAIL)
    expect(page).to_have_url(re.compile(r"/customers\?q=ana\.g$"))

    page.get_by_role("link", name="Ana García").click()
    page.wait_for_url(f"**/customers/{customer_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ana García")
    expect(page.locator("#profile")).to_contain_text("España")
    expect(page.locator("#computed")).to_contain_text("1.234,50 €")
    expect(page.locator(".tz-note")).to_contain_text("America/Mexico_City")
    entries = page.locator("#timeline .entry")
    expect(entries).to_have_count(5)

    # Filter the timeline by channel: chips apply at once, the rest of the page stays.
    page.locator("#filter-channel").get_by_text("email", exact=True).click()
    expect(entries).to_have_count(1)
    expect(entries.first).to_contain_text("Email Opened")
    expect(page).to_have_url(re.compile(r"channel=email"))
    page.locator("#filter-channel").get_by_text("call_center", exact=True).click()
    expect(entries).to_have_count(2)
    expect(page.locator("#profile")).to_be_visible()

    # Properties open on demand.
    entries.first.locator("summary").click()
    expect(entries.first.locator("table.kv")).to_contain_text("spring")

    page.screenshot(path=SCREENSHOT, full_page=True)

    # Switch to English: the same page, filters kept, in English.
    page.get_by_role("link", name="EN", exact=True).click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    expect(page.locator("#computed")).to_contain_text("€1,234.50")
    expect(page.locator("#profile")).to_contain_text("Spain")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(entries).to_have_count(2)
    # and it stays English on the next page
    page.get_by_role("link", name="Customers", exact=True).first.click()
    expect(page.get_by_role("heading", name="Customers")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to trato")).to_be_visible()
    page.goto(f"/customers/{customer_id}")
    expect(page.get_by_role("heading", name="Sign in to trato")).to_be_visible()


def test_older_entries_load_in_place(page, client, admin_token, write_key):
    from playwright.sync_api import expect

    calls = [{"type": "identify", "userId": "u-long", "messageId": "long-0",
              "timestamp": "2025-12-31T00:00:00Z", "traits": {"firstName": "Lola", "email": "lola@example.com"}}]
    calls += [
        {"type": "track", "userId": "u-long", "messageId": f"long-{n}", "event": f"Step {n:03d}",
         "timestamp": f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z"}
        for n in range(1, 70)
    ]
    track(client, write_key, calls)
    _sign_in(page, admin_token)
    page.goto("/customers?q=lola")
    page.get_by_role("link", name="Lola").click()
    entries = page.locator("#timeline .entry")
    expect(entries).to_have_count(50)
    page.get_by_role("link", name="Entradas anteriores").click()
    expect(entries).to_have_count(70)
    expect(entries.last).to_contain_text("Identificación")
    expect(page.get_by_role("link", name="Entradas anteriores")).to_have_count(0)


def test_customer_html_never_runs(page, client, admin_token, write_key):
    from playwright.sync_api import expect

    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    track(client, write_key, [
        {"type": "identify", "userId": "u-x", "messageId": "x-1",
         "traits": {"firstName": "<script>alert(1)</script>", "email": "xss@example.com",
                    "bio": "<img src=x onerror=alert(2)>"}},
        {"type": "track", "userId": "u-x", "messageId": "x-2", "event": "<img src=x onerror=alert(3)>",
         "properties": {"note": "<svg onload=alert(4)>", "channel": "<b onmouseover=alert(5)>web</b>"}},
    ])
    _sign_in(page, admin_token)
    page.get_by_role("searchbox").press_sequentially("xss@", delay=20)
    link = page.locator("#results tbody a").first
    expect(link).to_have_text("<script>alert(1)</script>")
    link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("<script>alert(1)</script>")
    expect(page.locator("#profile")).to_contain_text("<img src=x onerror=alert(2)>")
    page.locator("#timeline .entry summary").first.click()
    expect(page.locator("#timeline")).to_contain_text("<svg onload=alert(4)>")
    page.locator("#filter-channel label").first.click()
    expect(page.locator("#timeline .entry")).to_have_count(1)
    page.locator("#timeline .tag.channel").first.hover()
    page.wait_for_timeout(300)
    assert page.locator("#main img, #main svg, #main script, #main b").count() == 0
    assert dialogs == []
