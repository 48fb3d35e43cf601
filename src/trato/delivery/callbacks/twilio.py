"""Twilio's callbacks to ``/hooks/{provider}/twilio/…``: message statuses, calls' statuses and
the messages customers send to our numbers.

Twilio signs each request with ``X-Twilio-Signature``: base64(HMAC-SHA1(auth token, URL +
every POST parameter's name and value, sorted by name)). The URL is the one Twilio was given,
so it is rebuilt from ``TRATO_BASE_URL`` (we may sit behind a proxy), with the query as it came;
like Twilio's own helpers we accept it with or without the scheme's default port. A missing or
wrong signature gets 403 and a log line, and nothing else happens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import structlog
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from trato.core.clock import parse_timestamp
from trato.core.db import unit_of_work
from trato.core.errors import ConfigurationError, PayloadTooLarge
from trato.core.settings import get_settings
from trato.delivery import feedback
from trato.delivery.channels import registry
from trato.delivery.channels.twilio import RECIPIENT_ERRORS, UNREACHABLE_FOREVER, _Twilio
from trato.delivery.errors import ForgedCallback, InvalidCallback, ProviderNotFound

log = structlog.get_logger("trato.delivery.callbacks.twilio")
router = APIRouter()

MAX_BODY = 64 * 1024
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
# Twilio's MessageStatus → ours; queued, accepted, sending, sent, scheduled change nothing.
MESSAGE_STATUS = {"delivered": "delivered", "read": "read", "undelivered": "failed", "failed": "failed",
                  "canceled": "failed"}
# CallStatus → ours: answered (in-progress) or completed means the customer heard the call.
CALL_STATUS = {"in-progress": "delivered", "completed": "delivered", "busy": "failed", "no-answer": "failed",
               "failed": "failed", "canceled": "failed"}
MAX_MEDIA = 10


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's ``X-Twilio-Signature`` of a request to ``url`` with these POST parameters."""
    grouped: dict[str, list[str]] = {}
    for name, value in params:
        grouped.setdefault(name, []).append(value)
    text = url + "".join(name + value for name in sorted(grouped) for value in sorted(grouped[name]))
    digest = hmac.new(auth_token.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _port_variants(url: str) -> list[str]:
    """The URL as given and with the scheme's default port added or removed."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if default is None or not host:
        return [url]
    other = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    netloc = f"{other}{host}" if parts.port else f"{other}{host}:{default}"
    return [url, urlunsplit(parts._replace(netloc=netloc))]


def verify(auth_token: str, url: str, params: list[tuple[str, str]], header: str | None) -> bool:
    """True when ``header`` is Twilio's signature of the request (constant-time comparison)."""
    if not header:
        return False
    given = header.strip().encode()
    return any(hmac.compare_digest(signature(auth_token, candidate, params).encode(), given)
               for candidate in _port_variants(url))


def signed_url(provider: str, kind: str, query: str) -> str:
    """The URL Twilio signed: ours as configured, not as the request reached us."""
    url = f"{get_settings().base_url.rstrip('/')}/hooks/{provider}/twilio/{kind}"
    return f"{url}?{query}" if query else url


async def _verified(request: Request, provider: str, kind: str) -> tuple[_Twilio, dict[str, str]]:
    try:
        adapter = registry.provider(provider)
    except ConfigurationError as exc:  # configured but not usable: logged for the operator, not served
        log.error("twilio callback for a provider that cannot be set up", provider=provider, problem=exc.message)
        raise ProviderNotFound(f"the provider {provider!r} is not set up", details={"provider": provider}) from None
    if not isinstance(adapter, _Twilio):
        raise ProviderNotFound(f"{provider} is not a Twilio provider", details={"provider": provider})
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"a Twilio callback is at most {MAX_BODY} bytes")
    pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    header = request.headers.get("x-twilio-signature")
    if not verify(adapter.auth_token, signed_url(provider, kind, request.url.query), pairs, header):
        log.warning("twilio callback refused: signature", provider=provider, callback=kind,
                    reason="missing" if not header else "mismatch",
                    client=request.client.host if request.client else None)
        raise ForgedCallback("the X-Twilio-Signature header is missing or does not match this request",
                             details={"provider": provider})
    return adapter, dict(pairs)


def _error(code: str | None) -> tuple[str | None, bool]:
    if not code or code == "0":
        return None, False
    number = int(code) if code.isdigit() else None
    meaning = RECIPIENT_ERRORS.get(number or 0)
    return (f"Twilio {code}" + (f" ({meaning})" if meaning else "")), number in UNREACHABLE_FOREVER


def _when(value: str | None) -> datetime | None:
    """Twilio's ``Timestamp`` is an RFC 2822 date ("Sat, 05 Dec 2026 18:00:00 +0000")."""
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return parse_timestamp(value)


def _apply(provider: str, sid: str, status: str, error: str | None, permanent: bool, at: Any,
           details: dict[str, Any]) -> feedback.StatusOutcome:
    with unit_of_work() as session:
        return feedback.apply_status(session, provider=provider, provider_message_id=sid, status=status, at=at,
                                     error=error, permanent=permanent, details=details)


@router.post("/{provider}/twilio/status")
async def message_status(provider: str, request: Request) -> Response:
    """A message's status: delivered, read, undelivered/failed with Twilio's error code."""
    _, params = await _verified(request, provider, "status")
    sid = params.get("MessageSid") or params.get("SmsSid")
    status = params.get("MessageStatus") or params.get("SmsStatus")
    if not sid or not status:
        raise InvalidCallback("a Twilio status callback has MessageSid and MessageStatus")
    ours = MESSAGE_STATUS.get(status)
    if ours is not None:
        error, permanent = _error(params.get("ErrorCode"))
        details = {"provider_status": status, "error_code": params.get("ErrorCode") or None}
        await run_in_threadpool(_apply, provider, sid, ours, error, permanent, None, details)
    return Response(status_code=204)


@router.post("/{provider}/twilio/call-status")
async def call_status(provider: str, request: Request) -> Response:
    """A call's progress: answered/completed is delivered; busy, no answer, failed are failures."""
    _, params = await _verified(request, provider, "call-status")
    sid, status = params.get("CallSid"), params.get("CallStatus")
    if not sid or not status:
        raise InvalidCallback("a Twilio call status callback has CallSid and CallStatus")
    ours = CALL_STATUS.get(status)
    if ours is not None:
        error, permanent = _error(params.get("ErrorCode"))
        if ours == "failed" and error is None:
            error = f"call {status}"
        details = {"provider_status": status, "duration": params.get("CallDuration") or None,
                   "answered_by": params.get("AnsweredBy") or None}
        await run_in_threadpool(_apply, provider, sid, ours, error, permanent and status == "failed",
                                _when(params.get("Timestamp")), details)
    return Response(status_code=204)


def _inbound(provider: str, params: dict[str, str]) -> feedback.InboundOutcome:
    sender = params.get("From", "")
    channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    count = params.get("NumMedia", "0")
    media = [{"url": params.get(f"MediaUrl{i}"), "content_type": params.get(f"MediaContentType{i}")}
             for i in range(min(int(count) if count.isdigit() else 0, MAX_MEDIA))]
    with unit_of_work() as session:
        return feedback.receive_inbound(
            session, channel=channel, provider=provider, sender=sender.removeprefix("whatsapp:"),
            text=params.get("Body", ""), provider_message_id=params["MessageSid"], media=media,
            details={"to": params.get("To", "").removeprefix("whatsapp:") or None,
                     "segments": params.get("NumSegments") or None},
        )


@router.post("/{provider}/twilio/inbound")
async def inbound(provider: str, request: Request) -> Response:
    """A customer's message to one of our numbers; answered with empty TwiML (no automatic reply)."""
    _, params = await _verified(request, provider, "inbound")
    if not params.get("MessageSid") or not params.get("From"):
        raise InvalidCallback("an incoming Twilio message has MessageSid and From")
    await run_in_threadpool(_inbound, provider, params)
    return Response(EMPTY_TWIML, media_type="text/xml")
