"""Infobip's callbacks: delivery reports and incoming messages (JSON, ``results[]``).

Infobip does not sign its webhooks, so each provider has a secret of its own
(``webhook_secret``) that the callback must carry, either in the path
(``/hooks/{provider}/infobip/{secret}/reports``, the notify URL we give with each message) or as
the password of HTTP Basic (for webhooks set up in Infobip's portal with basic authentication).
It is compared in constant time; without it the answer is 401 and nothing changes.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from trato.core.clock import parse_timestamp
from trato.core.db import unit_of_work
from trato.core.errors import ConfigurationError, PayloadTooLarge
from trato.core.http import JSON
from trato.delivery import feedback
from trato.delivery.channels import registry
from trato.delivery.channels.infobip import InfobipSms
from trato.delivery.errors import BadSignature, InvalidCallback, ProviderNotFound

log = structlog.get_logger("trato.delivery.callbacks.infobip")
router = APIRouter()

MAX_BODY = 1024 * 1024
MAX_RESULTS = 1000
# status.groupName of a delivery report → ours; PENDING and ACCEPTED change nothing.
REPORT_STATUS = {"DELIVERED": "delivered", "UNDELIVERABLE": "failed", "REJECTED": "failed", "EXPIRED": "failed"}


def _basic_password(header: str | None) -> str | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


async def _verified(request: Request, provider: str, token: str | None) -> list[dict[str, Any]]:
    try:
        adapter = registry.provider(provider)
    except ConfigurationError as exc:  # configured but not usable: logged for the operator, not served
        log.error("infobip callback for a provider that cannot be set up", provider=provider, problem=exc.message)
        raise ProviderNotFound(f"the provider {provider!r} is not set up", details={"provider": provider}) from None
    if not isinstance(adapter, InfobipSms):
        raise ProviderNotFound(f"{provider} is not an Infobip provider", details={"provider": provider})
    secret = adapter.webhook_secret
    given = token if token is not None else _basic_password(request.headers.get("authorization"))
    if not secret or not given or not hmac.compare_digest(given.encode(), secret.encode()):
        log.warning("infobip callback refused: secret", provider=provider, path=request.url.path.rsplit("/", 1)[-1],
                    reason="not configured" if not secret else "missing" if not given else "mismatch",
                    client=request.client.host if request.client else None)
        raise BadSignature("this callback does not carry the provider's webhook secret", details={"provider": provider})
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"an Infobip callback is at most {MAX_BODY} bytes")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidCallback("an Infobip callback is a JSON object with results[]") from None
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results) or len(results) > MAX_RESULTS:
        raise InvalidCallback(f"an Infobip callback has results[]: a list of at most {MAX_RESULTS} objects")
    return results


def _report(result: dict[str, Any]) -> dict[str, Any] | None:
    status = result.get("status") if isinstance(result.get("status"), dict) else {}
    error = result.get("error") if isinstance(result.get("error"), dict) else {}
    ours = REPORT_STATUS.get(str(status.get("groupName", "")))
    message_id = result.get("messageId")
    if ours is None or not isinstance(message_id, str) or not message_id:
        return None
    failed = ours == "failed"
    error_text = None
    if failed:
        error_text = f"Infobip {status.get('name', '')}: {error.get('name', '')} {error.get('description', '')}".strip()
    return {
        "provider_message_id": message_id, "status": ours, "error": error_text,
        # Infobip says itself whether an error is permanent (unknown subscriber…); an expiry is not.
        "permanent": failed and error.get("permanent") is True and status.get("groupName") != "EXPIRED",
        "at": parse_timestamp(result.get("doneAt")),
        "details": {"provider_status": status.get("name"), "segments": result.get("smsCount"),
                    "error_code": error.get("id") or None, "callback_data": result.get("callbackData")},
    }


def _apply_reports(provider: str, results: list[dict[str, Any]]) -> int:
    reports = [r for r in map(_report, results) if r is not None]
    with unit_of_work() as session:
        for report in reports:
            feedback.apply_status(session, provider=provider, **report)
    return len(reports)


def _sender(number: str) -> str:
    return f"+{number}" if number.isdigit() else number


def _apply_inbound(provider: str, results: list[dict[str, Any]]) -> int:
    with unit_of_work() as session:
        for result in results:
            sender, message_id = result.get("from"), result.get("messageId")
            if not isinstance(sender, str) or not isinstance(message_id, str) or not sender or not message_id:
                raise InvalidCallback("an incoming Infobip message has from and messageId")
            feedback.receive_inbound(
                session, channel="sms", provider=provider, sender=_sender(sender), text=str(result.get("text") or ""),
                provider_message_id=message_id, at=parse_timestamp(result.get("receivedAt")),
                details={"to": result.get("to"), "keyword": result.get("keyword"), "segments": result.get("smsCount")},
            )
    return len(results)


@router.post("/{provider}/infobip/{token}/reports")
async def reports_with_token(provider: str, token: str, request: Request) -> JSON:
    """Delivery reports to the notify URL we gave with each message (the secret in the path)."""
    results = await _verified(request, provider, token)
    return JSON({"applied": await run_in_threadpool(_apply_reports, provider, results)})


@router.post("/{provider}/infobip/reports")
async def reports_with_basic(provider: str, request: Request) -> JSON:
    """Delivery reports from a webhook set up in Infobip's portal with HTTP Basic."""
    results = await _verified(request, provider, None)
    return JSON({"applied": await run_in_threadpool(_apply_reports, provider, results)})


@router.post("/{provider}/infobip/{token}/inbound")
async def inbound_with_token(provider: str, token: str, request: Request) -> JSON:
    """Messages customers send to our Infobip numbers (forwarding URL with the secret in the path)."""
    results = await _verified(request, provider, token)
    return JSON({"received": await run_in_threadpool(_apply_inbound, provider, results)})


@router.post("/{provider}/infobip/inbound")
async def inbound_with_basic(provider: str, request: Request) -> JSON:
    """Messages customers send to our Infobip numbers (forwarding with HTTP Basic)."""
    results = await _verified(request, provider, None)
    return JSON({"received": await run_in_threadpool(_apply_inbound, provider, results)})
