"""Archive fixtures: a deterministic test reproducer (standing in for the content domain's) and
helpers that archive messages as delivery will."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.console.conftest import sign_in_with_token, signed_in  # noqa: F401

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
    from sqlalchemy import text

    # The content domain reads the version on the same session, even while verify streams rows.
    assert session.execute(text("SELECT 1")).scalar() == 1
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


FRAMED_EMAIL = re.compile(r"/archive/arc_[0-9A-Z]+/view$")


@pytest.fixture
def page(browser, live_server) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A browser tab failing the test on any script error or policy violation, except those of an
    archived e-mail inside its iframe: blocking its scripts and remote images is the point."""
    context = browser.new_context(base_url=live_server, locale="es-ES", viewport={"width": 1360, "height": 1000},
                                  accept_downloads=True)
    tab = context.new_page()
    problems: list[str] = []
    blocked_in_email: list[str] = []

    def on_console(message: Any) -> None:
        if message.type != "error" or message.text.startswith("Failed to load resource"):
            return
        framed = FRAMED_EMAIL.search(message.location.get("url", ""))
        (blocked_in_email if framed else problems).append(message.text)

    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("console", on_console)
    tab.blocked_in_email = blocked_in_email  # type: ignore[attr-defined]
    yield tab
    context.close()
    assert not problems, problems
