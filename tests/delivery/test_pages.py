"""The console's messages pages: the list by state and one message's history, in both languages,
with customer-controlled text escaped."""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.conftest import signed_in  # noqa: F401
from trato.delivery.channels.base import ProviderResult

pytestmark = pytest.mark.usefixtures("immediate_queue")


def test_the_list_filters_by_state_and_a_message_shows_its_history(
        api: Any, signed_in: Any, sandbox: Any, send_body: Any, world: dict[str, str]) -> None:  # noqa: F811
    accepted = api.post("/api/v1/messages", json=send_body()).json()["id"]
    sandbox.fail_next(ProviderResult.ambiguous("<script>alert(1)</script> timed out"))
    unsure = api.post("/api/v1/messages", json=send_body()).json()["id"]

    page = signed_in.get("/messages?state=possibly_sent&lang=es")
    assert page.status_code == 200
    assert "<h1>Mensajes</h1>" in page.text
    assert unsure in page.text and accepted not in page.text
    assert "posiblemente enviado" in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text

    every = signed_in.get("/messages?lang=en").text
    assert accepted in every and unsure in every and "accepted by provider" in every

    one = signed_in.get(f"/messages/{accepted}?lang=en").text
    for state in ("decided", "queued", "sending", "accepted by provider"):
        assert state in one
    assert f'href="/customers/{world["customer_id"]}"' in one
    assert signed_in.get("/messages/msg_NOPE").status_code == 404


def test_the_pages_need_a_signed_in_user(client: Any, database_url: str) -> None:
    response = client.get("/messages", follow_redirects=False)
    assert response.status_code in (303, 401)
