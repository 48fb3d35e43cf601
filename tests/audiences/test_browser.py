"""The condition builder in a real browser: the count and sample follow the conditions as they are
typed (htmx, no inline script, no CSP violation), and the segment saves and shows on the 360° page."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser
SCREENSHOT = "/tmp/trato-segment-builder.png"


def test_live_count_while_building_then_save(page, admin_token, people):
    from playwright.sync_api import expect

    page.goto("/")
    page.get_by_label("Token de administrador, editor o lector").fill(admin_token)
    page.get_by_role("button", name="Entrar con el token").click()
    page.wait_for_url(re.compile(r"/customers$"))

    page.get_by_role("link", name="Segmentos").click()
    expect(page.get_by_role("heading", name="Segmentos", level=1)).to_be_visible()
    page.get_by_role("link", name="Nuevo segmento").click()
    page.get_by_label("Nombre", exact=True).fill("Clientes de Madrid")
    page.get_by_label("Condición 1", exact=True).select_option("trait")
    page.get_by_label("Campo o evento 1", exact=True).fill("city")
    page.get_by_label("Operador 1", exact=True).select_option("eq")
    page.get_by_label("Valor 1", exact=True).fill("Madrid")
    expect(page.locator("#segment-count")).to_have_text("2")
    expect(page.locator("#segment-sample")).to_contain_text("Ana")
    expect(page.locator("#segment-sample")).not_to_contain_text("Luis")

    # A second condition narrows it: Ana viewed product X three times today.
    page.get_by_label("Condición 2", exact=True).select_option("event")
    page.get_by_label("Campo o evento 2", exact=True).fill("Product Viewed")
    page.get_by_label("Número 2", exact=True).fill("3")
    page.get_by_label("En los últimos días 2", exact=True).fill("7")
    expect(page.locator("#segment-count")).to_have_text("1")
    # A broken value is named by its place in the tree, and fixing it brings the count back.
    page.get_by_label("En los últimos días 2", exact=True).fill("0")
    expect(page.locator("#segment-problem")).to_contain_text("conditions[1].within_days")
    page.get_by_label("En los últimos días 2", exact=True).fill("7")
    expect(page.locator("#segment-count")).to_have_text("1")

    page.get_by_role("button", name="Guardar segmento").click()
    page.wait_for_url(re.compile(r"/segments/seg_"))
    expect(page.get_by_role("heading", name="Clientes de Madrid", level=1)).to_be_visible()
    expect(page.locator("#segment-count")).to_have_text("1")
    page.screenshot(path=SCREENSHOT, full_page=True)

    page.get_by_role("link", name="Ana").click()
    expect(page.locator("#segments")).to_contain_text("Clientes de Madrid")
