"""Meta's WhatsApp webhooks: ``/hooks/{provider}/whatsapp``.

- ``GET``: the subscription handshake. Meta sends ``hub.mode=subscribe``, ``hub.verify_token``
  (typed in the app's webhook set-up) and ``hub.challenge``; the challenge is echoed as text when
  the token matches, anything else is 403.
- ``POST``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`` is verified on
  the raw bytes before anything is parsed (403 when missing or wrong). The body carries
  ``entry[].changes[].value`` with ``statuses[]`` (sent / delivered / read / failed with
  ``errors[]``) and ``messages[]`` from customers (text, button replies, interactive replies,
  media, locations…) with the sender's profile in ``contacts[]``. Everything in one POST is
  applied in one unit of work; a repeated POST changes nothing (statuses only move forward and
  inbound messages are kept once per wamid). Meta retries anything but a 200.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from trato.core.clock import parse_timestamp
from trato.core.db import unit_of_work
from trato.core.errors import PayloadTooLarge
from trato.delivery import feedback
from trato.delivery.channels import registry
from trato.delivery.channels.whatsapp import PERMANENT, UNDELIVERABLE, WhatsAppCloud
from trato.delivery.errors import ForgedCallback, InvalidCallback, ProviderNotFound

log = structlog.get_logger("trato.delivery.callbacks.meta")
router = APIRouter(tags=["provider callbacks"])

MAX_BODY = 4 * 1024 * 1024  # Meta batches up to 1,000 updates in one POST
STATUSES = {"delivered": "delivered", "read": "read", "failed": "failed"}
# The failures that say the number can never receive WhatsApp: suppressed for the channel.
UNREACHABLE = frozenset({UNDELIVERABLE})
MEDIA = ("image", "video", "audio", "document", "sticker")
_WA_ID = re.compile(r"[1-9][0-9]{6,14}")  # a WhatsApp id is the number in international form, digits only


def _adapter(provider: str) -> WhatsAppCloud:
    adapter = registry.provider(provider)
    if not isinstance(adapter, WhatsAppCloud):
        raise ProviderNotFound(f"{provider!r} is not a WhatsApp provider", details={"provider": provider})
    return adapter


@router.get("/{provider}/whatsapp", response_class=PlainTextResponse)
def handshake(provider: str, request: Request) -> Response:
    """Meta's subscription check: echo ``hub.challenge`` when ``hub.verify_token`` matches."""
    adapter = _adapter(provider)
    query = request.query_params
    expected = adapter.wa.verify_token.get_secret_value() if adapter.wa.verify_token else ""
    given = query.get("hub.verify_token", "")
    challenge = query.get("hub.challenge", "")
    if (query.get("hub.mode") != "subscribe" or not expected or not challenge or len(challenge) > 200
            or not hmac.compare_digest(given.encode(), expected.encode())):
        log.warning("whatsapp webhook handshake refused", provider=provider, mode=query.get("hub.mode"),
                    configured=bool(expected))
        raise ForgedCallback("the verify token does not match the one configured for this provider",
                                details={"provider": provider})
    return PlainTextResponse(challenge, headers={"X-Content-Type-Options": "nosniff"})


@router.post("/{provider}/whatsapp")
async def webhook(provider: str, request: Request) -> Response:
    """Statuses of messages we sent and messages customers sent us (see the module's docstring)."""
    adapter = _adapter(provider)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY:
            raise PayloadTooLarge(f"a webhook body is at most {MAX_BODY // 1024 // 1024} MB")
    verify(adapter, bytes(body), request.headers.get("x-hub-signature-256", ""))
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidCallback("the webhook body is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidCallback("the webhook body is not a JSON object")
    counts = await run_in_threadpool(apply, adapter, payload)
    return JSONResponse(counts)


def verify(adapter: WhatsAppCloud, body: bytes, header: str) -> None:
    """Raise ForgedCallback unless ``header`` is ``sha256=`` + the HMAC of ``body`` with the app secret."""
    secret = adapter.wa.app_secret.get_secret_value() if adapter.wa.app_secret else ""
    scheme, _, given = header.strip().partition("=")
    if secret:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if scheme.lower() == "sha256" and hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
            return
    log.warning("whatsapp webhook signature refused", provider=adapter.instance, signed=bool(given),
                configured=bool(secret))
    raise ForgedCallback("the X-Hub-Signature-256 header does not match this body and the app secret",
                            details={"provider": adapter.instance})


def apply(adapter: WhatsAppCloud, payload: dict[str, Any]) -> dict[str, int]:
    """Apply every status and inbound message of one verified webhook in one unit of work."""
    counts = {"statuses": 0, "changed": 0, "messages": 0, "stored": 0}
    if payload.get("object") != "whatsapp_business_account":
        return counts
    provider = adapter.instance
    with unit_of_work() as session:
        for value in _values(payload):
            names = {str(c.get("wa_id")): _dict(c.get("profile")).get("name") for c in _list(value.get("contacts"))}
            number = _dict(value.get("metadata")).get("phone_number_id")
            for status in _list(value.get("statuses")):
                counts["statuses"] += 1
                counts["changed"] += _status(session, provider, status)
            for message in _list(value.get("messages")):
                counts["messages"] += 1
                counts["stored"] += _inbound(session, provider, message, names, number)
    return counts


def _values(payload: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for entry in _list(payload.get("entry")):
        for change in _list(entry.get("changes")):
            if change.get("field") == "messages" and isinstance(change.get("value"), dict):
                found.append(change["value"])
    return found


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _when(value: Any) -> datetime | None:
    try:
        return parse_timestamp(int(value))
    except (TypeError, ValueError):
        return None


def _status(session: Any, provider: str, status: dict[str, Any]) -> int:
    state = STATUSES.get(str(status.get("status")))
    wamid = status.get("id")
    if state is None or not isinstance(wamid, str) or not wamid:
        return 0  # "sent" (Meta handed it on) adds nothing to "accepted"; unknown statuses are skipped
    error, permanent, details = None, False, {}
    errors = _list(status.get("errors"))
    if errors:
        first = errors[0]
        code = first.get("code") if isinstance(first.get("code"), int) else None
        data = _dict(first.get("error_data"))
        error = f"WhatsApp error {code}: {first.get('title') or first.get('message') or ''}".strip()
        if data.get("details"):
            error += f" ({data['details']})"
        permanent = code in UNREACHABLE
        details = {"error_code": code, "retryable": code not in PERMANENT}
    pricing = _dict(status.get("pricing"))
    if pricing.get("category"):
        details["pricing_category"] = pricing["category"]
    outcome = feedback.apply_status(session, provider=provider, provider_message_id=wamid, status=state,
                                    at=_when(status.get("timestamp")), error=error[:500] if error else None,
                                    permanent=permanent, details=details)
    return int(outcome.changed)


def _inbound(session: Any, provider: str, message: dict[str, Any], names: dict[str, Any], number: Any) -> int:
    sender, wamid = str(message.get("from") or ""), message.get("id")
    if not _WA_ID.fullmatch(sender) or not isinstance(wamid, str) or not wamid:
        return 0
    text, media, details = _content(message)
    details.update({"type": message.get("type"), "profile_name": names.get(sender), "phone_number_id": number})
    context = _dict(message.get("context"))
    if context.get("id"):
        details["in_reply_to"] = context["id"]  # the wamid of our message they answered
    outcome = feedback.receive_inbound(session, channel="whatsapp", provider=provider, sender=f"+{sender}",
                                       text=text, provider_message_id=wamid, at=_when(message.get("timestamp")),
                                       media=media, details=details)
    return int(outcome.event_id is not None)


def _content(message: dict[str, Any]) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """The text a person reads, the media's ids (fetched later through the Graph API) and what else to keep."""
    kind = str(message.get("type") or "")
    body = _dict(message.get(kind))
    if kind == "text":
        return str(body.get("body") or ""), [], {}
    if kind == "button":  # a quick-reply button of a template
        return str(body.get("text") or ""), [], {"button_payload": body.get("payload")}
    if kind == "interactive":
        reply_kind = str(body.get("type") or "")
        reply = _dict(body.get(reply_kind))
        return str(reply.get("title") or ""), [], {"reply_id": reply.get("id"), "reply_type": reply_kind}
    if kind in MEDIA:
        item = {k: body.get(k) for k in ("id", "mime_type", "sha256", "filename") if body.get(k)}
        return str(body.get("caption") or ""), [{"kind": kind, **item}], {}
    if kind == "location":
        place = ", ".join(str(body[k]) for k in ("name", "address") if body.get(k))
        return place or f"{body.get('latitude')},{body.get('longitude')}", [], {
            "location": {k: body.get(k) for k in ("latitude", "longitude", "name", "address")}}
    if kind == "reaction":
        return str(body.get("emoji") or ""), [], {"reacted_to": body.get("message_id")}
    if kind == "contacts":
        shared = [str(_dict(c.get("name")).get("formatted_name") or "") for c in _list(message.get("contacts"))]
        return ", ".join(n for n in shared if n), [], {}
    return "", [], {"unsupported": True}
