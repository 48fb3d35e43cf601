"""Console fixtures: a signed-in test client and customers fed through the tracking API (the
browser and its tabs are in tests/conftest.py, shared by every domain's page tests)."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

ANA_EMAIL = "ana.garcia@example.com"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in_with_token(client: Any, token: str, **extra: str) -> Any:
    form = client.get("/")
    return client.post(
        "/", data={"csrf": csrf_of(form.text), "via": "token", "token": token, **extra}, follow_redirects=False
    )


def track(client: Any, write_key: str, calls: list[dict[str, Any]]) -> None:
    """Send calls through the tracking API, as a customer's systems would."""
    basic = base64.b64encode(f"{write_key}:".encode()).decode()
    response = client.post("/v1/batch", json={"batch": calls}, headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200, response.text
    assert not response.json().get("rejected"), response.text


def customer_id_of(email: str) -> str:
    from trato.core.db import new_session
    from trato.customers import service

    with new_session(readonly=True) as session:
        return service.lookup(session, kind="email", value=email).id


def seed_ana(client: Any, write_key: str) -> str:
    """Ana: a full profile and a timeline across web, e-mail and the call centre."""
    track(client, write_key, [
        {"type": "identify", "userId": "u-ana", "messageId": "ana-1", "timestamp": "2026-03-01T09:00:00Z",
         "traits": {"firstName": "Ana", "lastName": "García", "email": ANA_EMAIL, "phone": "+34 612 345 678",
                    "country": "ES", "timezone": "America/Mexico_City", "locale": "es-MX", "birthday": "1985-04-12",
                    "createdAt": "2019-06-01", "plan": "gold", "newsletter": True}},
        {"type": "track", "userId": "u-ana", "messageId": "ana-2", "event": "Order Completed",
         "timestamp": "2026-03-02T10:00:00Z", "properties": {"revenue": 1234.5, "order_id": "A-77"}},
        {"type": "track", "userId": "u-ana", "messageId": "ana-3", "event": "Ticket Opened",
         "timestamp": "2026-03-03T11:00:00Z",
         "properties": {"channel": "call_center", "department": "service", "subject": "Late delivery"}},
        {"type": "track", "userId": "u-ana", "messageId": "ana-4", "event": "Email Opened",
         "timestamp": "2026-03-04T12:00:00Z",
         "properties": {"channel": "email", "department": "marketing", "campaign": "spring"}},
        {"type": "page", "userId": "u-ana", "messageId": "ana-5", "name": "Pricing",
         "timestamp": "2026-03-05T13:00:00Z", "properties": {"url": "https://shop.example.com/pricing"}},
    ])
    return customer_id_of(ANA_EMAIL)


@pytest.fixture
def signed_in(client, admin_token):  # type: ignore[no-untyped-def]
    """The test client with a console session of an admin token."""
    response = sign_in_with_token(client, admin_token)
    assert response.status_code == 303, response.text
    return client
