"""The preference center in a real browser, with JavaScript switched off: a customer opens the
link from an e-mail, changes what they receive with the keyboard and mouse, and saves."""

from __future__ import annotations

import pytest

from trato.core.db import new_session, unit_of_work
from trato.policy import service

pytestmark = pytest.mark.browser


def test_the_preference_center_without_javascript(browser, live_server, defaults, make_customer):
    from playwright.sync_api import expect

    cid = make_customer(first_name="Ana", locale="es-ES")
    with unit_of_work() as s:
        service.set_consent(s, customer_id=cid, channel="email", purpose="marketing", state="granted", source="form",
                            actor="test")
    context = browser.new_context(base_url=live_server, java_script_enabled=False, locale="es-ES")
    page = context.new_page()
    try:
        page.goto(service.preference_url(cid).removeprefix("http://127.0.0.1:8000"))
        expect(page.get_by_role("heading", name="Tus preferencias de comunicación")).to_be_visible()
        offers = page.get_by_label("Ofertas por Correo electrónico")
        expect(offers).to_be_checked()
        offers.uncheck()
        # Keyboard only: focus the SMS newsletter box, tick it with the space bar.
        sms_newsletter = page.get_by_label("Boletín por SMS")
        sms_newsletter.focus()
        page.keyboard.press("Space")
        expect(sms_newsletter).to_be_checked()
        page.get_by_label("Contactadme primero por").select_option("sms")
        page.get_by_label("Como mucho una vez al mes").check()
        page.get_by_role("button", name="Guardar mis preferencias").click()

        expect(page.get_by_role("status")).to_have_text("Tus preferencias se han guardado.")
        expect(page.get_by_label("Ofertas por Correo electrónico")).not_to_be_checked()
        expect(page.get_by_label("Boletín por SMS")).to_be_checked()
        expect(page.get_by_label("Como mucho una vez al mes")).to_be_checked()
        expect(page.locator("#history li").first).to_contain_text("centro de preferencias")

        page.goto(page.url.split("?")[0] + "?lang=en")
        expect(page.get_by_role("heading", name="Your communication preferences")).to_be_visible()
    finally:
        context.close()
    with new_session(readonly=True) as s:
        state = {(c.channel, c.topic): c.state for c in service.consents_of(s, customer_id=cid)}
    assert state[("email", "offers")] == "denied" and state[("sms", "newsletter")] == "granted"
