"""The communication page in a real browser: every channel side by side, for a sample profile
and then for a customer found by name, with no script error and no CSP violation."""

from __future__ import annotations

import re

import pytest

from tests.console.conftest import ANA_EMAIL, seed_ana
from tests.content.test_pages import _seed

pytestmark = pytest.mark.browser
SCREENSHOT = "/tmp/trato-communication-preview.png"


def test_side_by_side_preview_for_a_sample_and_a_customer(page, client, admin_token, write_key):
    from playwright.sync_api import expect

    seed_ana(client, write_key)
    communication_id = _seed()
    page.goto("/")
    page.get_by_label("Token de administrador, editor o lector").fill(admin_token)
    page.get_by_role("button", name="Entrar con el token").click()
    page.wait_for_url(re.compile(r"/customers$"))

    page.get_by_role("link", name="Comunicaciones").click()
    expect(page.get_by_role("heading", name="Comunicaciones", level=1)).to_be_visible()
    page.get_by_role("link", name="Invoice ready").click()
    page.wait_for_url(f"**/communications/{communication_id}")

    # The sample profile, every channel at once.
    expect(page.locator("#preview-who")).to_have_text("el perfil de ejemplo")
    expect(page.locator("#preview-sms .sms-text")).to_have_text("Hola Lucía: tu factura F-2026-001 ya está disponible.")
    # "í" and "á" are not in GSM-7: the Spanish text goes as UCS-2, and the page says so.
    expect(page.locator("#preview-sms .sms-facts")).to_contain_text("UCS-2 · 1 segmento · 17 caracteres libres")
    expect(page.locator("#preview-whatsapp .wa-body")).to_contain_text("Hola Lucía, tu factura de")
    expect(page.locator("#preview-whatsapp .wa-button")).to_have_text("Ver factura")
    expect(page.locator("#preview-push .push-title")).to_have_text("Factura F-2026-001")
    expect(page.locator("#preview-voice .spoken")).to_contain_text("Hola Lucía. Su factura es de 49.9 EUR.")
    expect(page.locator("#preview-letter img.page")).to_have_count(1)
    # The e-mail in sandboxed frames, desktop and mobile, with its own inline styles.
    desktop = page.frame_locator("#preview-email iframe.desktop")
    expect(desktop.locator("p").first).to_contain_text("Hola Lucía, tu factura F-2026-001")
    mobile = page.frame_locator("#preview-email iframe.mobile")
    expect(mobile.locator("a")).to_have_text("Ver factura")
    assert page.locator("#preview-email iframe.mobile").bounding_box()["width"] < page.locator(
        "#preview-email iframe.desktop").bounding_box()["width"]

    # A real customer, found by typing: the preview follows her language (es-MX → es).
    page.locator("#preview-q").press_sequentially("Ana G", delay=30)
    result = page.locator("#customer-results").get_by_role("link", name="Ana García")
    expect(result).to_be_visible()
    result.click()
    expect(page.locator("#preview-who")).to_have_text("Ana García")
    expect(page.locator("#preview-sms .sms-text")).to_have_text("Hola Ana: tu factura F-2026-001 ya está disponible.")
    expect(page.frame_locator("#preview-email iframe.desktop").locator("p").first).to_contain_text("Hola Ana")
    expect(page.frame_locator("#preview-web iframe").locator(".banner")).to_have_text("Ana, tu factura está lista")
    expect(page.locator("#preview-letter .alert")).to_contain_text("letter.no_address")  # she gave no address
    page.screenshot(path=SCREENSHOT, full_page=True)
    assert ANA_EMAIL in page.locator(".previewing").inner_text()

    # In English for her, chosen before searching: the language stays with the customer picked.
    page.locator("#preview-lang").select_option("en")
    page.locator("#preview-q").fill("")
    page.locator("#preview-q").press_sequentially("Ana G", delay=30)
    page.locator("#customer-results").get_by_role("link", name="Ana García").click()
    expect(page.locator("#preview-sms .sms-text")).to_have_text("Hi Ana: invoice F-2026-001 is ready.")
    expect(page.locator("#preview-sms h2")).to_contain_text("en")
