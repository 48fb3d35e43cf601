"""What the push tests share: an approved push communication and helpers to register devices."""

from __future__ import annotations

from typing import Any

PUSH_CONTENT = {
    "push": {
        "es": {"title": "Tu factura {{ data.invoice }}", "body": "Hola {{ customer.first_name }}, ya está disponible.",
               "deep_link": "https://banco.example/facturas/{{ data.invoice }}"},
        "en": {"title": "Your invoice {{ data.invoice }}", "body": "Hi {{ customer.first_name }}, it is ready.",
               "deep_link": "https://banco.example/facturas/{{ data.invoice }}"},
    },
}


def push_communication() -> str:
    """An approved transactional communication sent on push; returns its key."""
    from tests.delivery.conftest import approve_communication
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        return str(approve_communication(s, key="invoice-push", content=PUSH_CONTENT, channels=["push"]).key)


def register(api: Any, customer_id: str, **body: Any) -> dict[str, Any]:
    response = api.post(f"/api/v1/customers/{customer_id}/push-registrations", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def send_push(api: Any, customer_id: str, key: str, **extra: Any) -> Any:
    return api.post("/api/v1/messages", json={"customer": {"id": customer_id}, "communication": key,
                                               "data": {"invoice": "F-7"}, "channels": ["push"], **extra})


def message(api: Any, message_id: str) -> dict[str, Any]:
    return dict(api.get(f"/api/v1/messages/{message_id}").json())


def outgoing(recipient: str, **parts: str) -> Any:
    from trato.delivery.channels.base import OutgoingMessage

    return OutgoingMessage(message_id="msg_PUSH1", channel="push", recipient=recipient,
                           parts={"title": "Tu factura F-7", "body": "Ya está disponible.", **parts},
                           customer_id="cus_ANA", metadata={"communication": "invoice-push"})
