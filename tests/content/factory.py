"""Communications for tests: built through the service, as the API and the demo build them."""

from __future__ import annotations

from typing import Any

EMAIL_HTML = (
    '<html lang="{{ lang }}"><body><p style="color:#222222;background-color:#ffffff">'
    "Hola {{ customer.first_name }}, tu factura {{ data.invoice }} de {{ data.amount|money }} está lista.</p>"
    '<p><a href="https://example.com/facturas/{{ data.invoice }}">Ver factura</a></p></body></html>'
)
EMAIL_HTML_EN = EMAIL_HTML.replace("Hola", "Hi").replace("tu factura", "your invoice").replace(
    "de {{", "for {{").replace("está lista", "is ready").replace("Ver factura", "See the invoice")

CONTENT: dict[str, Any] = {
    "sms": {
        "es": {"text": "Hola {{ customer.first_name }}: tu factura {{ data.invoice }} ya está disponible."},
        "en": {"text": "Hi {{ customer.first_name }}: invoice {{ data.invoice }} is ready."},
    },
    "email": {
        "es": {"subject": "Tu factura {{ data.invoice }}", "body_html": EMAIL_HTML},
        "en": {"subject": "Your invoice {{ data.invoice }}", "body_html": EMAIL_HTML_EN},
    },
}


def make_communication(session: Any, *, actor: str = "token:author", key: str = "invoice-ready",
                       content: dict[str, Any] | None = None, purpose: str = "transactional", **extra: Any) -> Any:
    from trato.content import service

    fields: dict[str, Any] = {
        "name": "Invoice ready", "purpose": purpose, "department": "billing", "kind": "reactive",
        "trigger": "Invoice Issued event", "default_language": "es", "channels": ["sms", "email"],
        "languages": ["es", "en"], "sample_data": {"invoice": "F-2026-001", "amount": 49.9},
    }
    fields.update(extra)
    return service.create_communication(session, key=key, actor=actor, content=content or CONTENT, **fields)
