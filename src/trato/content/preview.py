"""Side-by-side preview: every channel of a communication rendered for one person, as JSON.

Shared by ``POST /api/v1/communications/{id}/preview`` and the console's communication page.
A channel that fails to render reports its error code and message in place; the others still
show. Documents are base64 (``pdf``), letter pages PNG images (``page_images``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.orm import Session

from trato.content import channel_parts, service, sms, voice
from trato.content.errors import ChannelNotCovered, TemplateError
from trato.content.models import Communication
from trato.core.errors import TratoError
from trato.core.settings import get_settings


def _extras(channel: str, parts: Mapping[str, str | bytes]) -> dict[str, Any]:
    if channel == "sms":
        analysis = sms.analyse(str(parts["text"]))
        settings = get_settings()
        price = Decimal(str(settings.sms_price_per_segment))
        return {"analysis": analysis.to_dict(), "cost": str(sms.cost_estimate(analysis, price)),
                "currency": settings.default_currency}
    if channel == "email":
        return {"bytes": len(str(parts["html"]).encode())}
    if channel == "whatsapp":
        return {name: orjson.loads(parts[name]) for name in ("payload", "preview", "params") if name in parts}
    if channel == "voice":
        try:
            return {"spoken": voice.spoken_text(str(parts["ssml"]))}
        except TratoError:
            return {}
    if channel == "letter" and isinstance(parts.get("pdf"), bytes):
        return {"page_images": [base64.b64encode(png).decode() for png in channel_parts.page_images(parts["pdf"])]}
    return {}


def preview(
    session: Session, *, communication: Communication, customer_id: str | None = None,
    sample: Mapping[str, Any] | None = None, language: str | None = None, data: Mapping[str, Any] | None = None,
    version_id: str | None = None, channels: Iterable[str] | None = None,
) -> dict[str, Any]:
    """``{version_id, channels: {channel: {language, parts, sha256, ...extras} | {error}}}``."""
    version = service.get_version(session, version_id or communication.latest_version_id or "")
    wanted = [c for c in (channels or version.content) if c in version.content]
    out: dict[str, Any] = {"communication_id": communication.id, "version_id": version.id,
                           "version": version.number, "status": version.status, "customer_id": customer_id,
                           "channels": {}}
    for channel in wanted:
        try:
            rendered = service.render(session, communication=communication, channel=channel, customer_id=customer_id,
                                      sample=sample, language=language, data=data, version_id=version.id)
        except (TemplateError, ChannelNotCovered) as exc:
            out["channels"][channel] = {"error": {"code": exc.code, "message": exc.message}}
            continue
        except TratoError as exc:
            if exc.status_code == 404 and customer_id:
                raise
            out["channels"][channel] = {"error": {"code": exc.code, "message": exc.message}}
            continue
        parts = {name: base64.b64encode(value).decode() if isinstance(value, bytes) else value
                 for name, value in rendered.parts.items()}
        out["channels"][channel] = {"language": rendered.language, "parts": parts, "sha256": rendered.content_sha256,
                                    **_extras(channel, rendered.parts)}
    return out
