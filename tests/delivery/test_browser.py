"""The messages page in a real browser: find the dead letters, open one, read its history."""

from __future__ import annotations

from typing import Any

import pytest

from trato.delivery.channels.base import ProviderResult

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("immediate_queue")]


def test_find_a_dead_letter_and_read_why(page: Any, admin_token: str, sandbox: Any, world: dict[str, str]) -> None:
    from playwright.sync_api import expect

    from trato.core.db import unit_of_work
    from trato.delivery import service

    sandbox.fail_next(ProviderResult.refused("550 5.1.1 no such mailbox", permanent=True))
    with unit_of_work() as s:
        message = service.send(s, actor="test", customer_id=world["customer_id"], communication=world["key"],
                               data={"invoice": "F-9", "amount": 3}, channels=["email"])
    with unit_of_work() as s:
        service.send(s, actor="test", customer_id=world["customer_id"], communication=world["key"],
                     data={"invoice": "F-10", "amount": 3}, channels=["sms"])

    page.goto("/")
    page.get_by_label("Token de administrador, editor o lector").fill(admin_token)
    page.get_by_role("button", name="Entrar con el token").click()
    page.get_by_role("link", name="Mensajes").click()
    expect(page.get_by_role("heading", name="Mensajes", level=1)).to_be_visible()
    expect(page.locator("#results tbody tr")).to_have_count(2)
    page.get_by_label("Estado").select_option("failed")
    page.get_by_role("button", name="Buscar").click()
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("550 5.1.1 no such mailbox")
    rows.first.get_by_role("link").first.click()
    page.wait_for_url(f"**/messages/{message.id}")
    expect(page.locator("#state")).to_have_text("fallido")
    expect(page.locator("#history li")).to_have_count(4)
