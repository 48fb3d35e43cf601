"""Archive fixtures: a deterministic test reproducer (standing in for the content domain's) and
helpers that archive messages as delivery will."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

ANA = {"customer_id": "cus_ANA", "email": "ana.garcia@example.com", "phone": "+34612345678"}
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def render(*, version_id: str, channel: str, language: str, context: dict[str, Any]) -> dict[str, str | bytes]:
    """What the test 'content domain' renders: the same context always gives the same bytes."""
    name = context["name"]
    if channel == "sms":
        return {"text": f"Hola {name}, tu factura {context['invoice']} está lista."}
    greeting = "Hola" if language == "es" else "Hello"
    return {
        "subject": f"{greeting} {name} ({version_id})",
        "html": f'<html lang="{language}"><body><p style="color:#c00">{greeting} {name}</p>'
                f"<p>Invoice {context['invoice']}</p></body></html>",
        "text": f"{greeting} {name}\nInvoice {context['invoice']}",
    }


def reproduce(session: Any, *, version_id: str, channel: str, language: str,
              context: dict[str, Any]) -> dict[str, str | bytes]:
    return render(version_id=version_id, channel=channel, language=language, context=context)


@pytest.fixture
def reproducer() -> Iterator[Any]:
    from trato.archive import service

    previous = service.register_reproducer(reproduce)
    yield reproduce
    service.register_reproducer(previous)


@pytest.fixture(autouse=True)
def _no_reproducer_by_default() -> Iterator[None]:
    from trato.archive import service

    previous = service.register_reproducer(None)
    yield
    service.register_reproducer(previous)


def archive_one(session: Any, *, customer_id: str = ANA["customer_id"], channel: str = "email",
                recipient: str = ANA["email"], invoice: str = "F-1", name: str = "Ana", language: str = "es",
                communication_id: str = "com_INVOICE", version_id: str = "ver_1", **extra: Any) -> Any:
    """Archive a message rendered by the test renderer (parts always given, context too)."""
    from trato.archive import service

    context = {"name": name, "invoice": invoice}
    parts = extra.pop("parts") if "parts" in extra else render(
        version_id=version_id, channel=channel, language=language, context=context)
    return service.record(
        session, customer_id=customer_id, communication_id=communication_id, version_id=version_id,
        channel=channel, language=language, recipient=recipient, parts=parts, render_context=context,
        decision=extra.pop("decision", {"allowed": True, "channel": channel, "purpose": "transactional",
                                        "reasons": [{"code": "consent", "basis": "contract"}]}),
        sent_at=extra.pop("sent_at", datetime(2026, 11, 2, 9, 30, tzinfo=UTC)), **extra,
    )
