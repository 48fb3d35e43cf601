"""E-mail over SMTP against a real SMTP server (aiosmtpd) on loopback: what arrives, and how each
answer of the server is classified."""

from __future__ import annotations

from typing import Any

import pytest

from trato.delivery.channels.base import OutgoingMessage

PARTS = {"subject": "Tu factura F-1 ✓", "html": "<p>Hola <b>Ana</b></p>", "text": "Hola Ana", "preheader": ""}


def _mail(**extra: Any) -> OutgoingMessage:
    fields: dict[str, Any] = {"message_id": "msg_01TEST", "channel": "email", "recipient": "ana@example.com",
                              "parts": dict(PARTS), "customer_id": "cus_ANA", "language": "es"}
    fields.update(extra)
    return OutgoingMessage(**fields)


def test_a_transactional_mail_arrives_multipart_with_our_message_id_and_no_unsubscribe(
        smtp_adapter: Any, smtp_server: Any) -> None:
    result = smtp_adapter.send(_mail(unsubscribe_url="https://x.example/u"))
    assert result.outcome == "accepted"
    assert result.provider_message_id == "<msg_01TEST@banco.example>"
    [received] = smtp_server.received
    assert received.sender == "avisos@banco.example"
    assert received.recipients == ["ana@example.com"]
    mail = received.message
    assert mail["Message-ID"] == "<msg_01TEST@banco.example>"
    assert mail["Subject"] == "Tu factura F-1 ✓"
    assert mail["From"] == "Banco Ejemplo <avisos@banco.example>"
    assert mail["Content-Language"] == "es"
    assert mail["Date"]
    assert mail["List-Unsubscribe"] is None
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert mail.get_body(("plain",)).get_content().strip() == "Hola Ana"
    assert mail.get_body(("html",)).get_content().strip() == "<p>Hola <b>Ana</b></p>"


def test_other_mail_carries_one_click_unsubscribe_headers(smtp_adapter: Any, smtp_server: Any) -> None:
    url = "http://127.0.0.1:8000/u/abc.def"
    assert smtp_adapter.send(_mail(transactional=False, unsubscribe_url=url)).outcome == "accepted"
    mail = smtp_server.received[0].message
    assert mail["List-Unsubscribe"] == f"<{url}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize(("fault", "outcome", "permanent"), [
    ({"refuse_rcpt": "550 5.1.1 no such mailbox"}, "refused", True),
    ({"refuse_rcpt": "452 4.2.2 mailbox full"}, "refused", False),
    ({"refuse_data": "451 4.3.0 try again later"}, "refused", False),
    ({"refuse_data": "554 5.7.1 rejected as spam"}, "refused", True),
    ({"drop_during_data": True}, "ambiguous", False),
])
def test_each_answer_of_the_server_is_classified(smtp_adapter: Any, smtp_server: Any, fault: dict[str, Any],
                                                 outcome: str, permanent: bool) -> None:
    for name, value in fault.items():
        setattr(smtp_server, name, value)
    result = smtp_adapter.send(_mail())
    assert (result.outcome, result.permanent) == (outcome, permanent), result
    assert result.error
    assert smtp_server.received == []


@pytest.mark.usefixtures("immediate_queue")
def test_the_send_api_delivers_marketing_mail_over_smtp_with_the_policy_unsubscribe_link(
        api: Any, smtp_adapter: Any, smtp_server: Any, send_body: Any, world: dict[str, str]) -> None:
    from trato.core.db import unit_of_work
    from trato.delivery.channels import registry
    from trato.policy import service as policy

    with unit_of_work() as s:
        policy.set_consent(s, customer_id=world["customer_id"], channel="email", purpose="marketing",
                           state="granted", source="form", actor="test")
        # Any hour: what is tested here is the mail, not the quiet hours.
        policy.set_quiet_hours(s, purpose="marketing", channel="*", start_minute=0, end_minute=0, exempt=True,
                               actor="test")
    previous = registry.use("email", smtp_adapter)
    try:
        response = api.post("/api/v1/messages", json=send_body(purpose="marketing", channels=["email"]))
    finally:
        registry.use("email", previous)
    assert response.status_code == 202, response.text
    sent = api.get(f"/api/v1/messages/{response.json()['id']}").json()
    assert (sent["state"], sent["provider"]) == ("accepted", "smtp")
    [received] = smtp_server.received
    mail = received.message
    assert mail["Message-ID"] == sent["provider_message_id"] == f"<{sent['id']}@banco.example>"
    assert "F-1" in mail["Subject"]
    assert "F-1" in mail.get_body(("html",)).get_content()
    assert "F-1" in mail.get_body(("plain",)).get_content()
    unsubscribe = mail["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("http://127.0.0.1:8000/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The link is policy's signed one-click unsubscribe: posting it withdraws the consent.
    assert api.post(unsubscribe.removeprefix("http://127.0.0.1:8000"),
                    data={"List-Unsubscribe": "One-Click"}).status_code < 400
    again = api.post("/api/v1/messages", json=send_body(purpose="marketing", channels=["email"])).json()
    assert again["state"] == "refused"


def test_it_sends_from_a_thread_that_already_runs_an_event_loop(smtp_adapter: Any, smtp_server: Any) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    async def caller() -> Any:
        return smtp_adapter.send(_mail())

    # A thread of its own: the test process's main thread may run a loop already (the browser's).
    with ThreadPoolExecutor(max_workers=1) as pool:
        result = pool.submit(asyncio.run, caller()).result()
    assert result.outcome == "accepted"
    assert len(smtp_server.received) == 1
