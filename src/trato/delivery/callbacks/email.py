"""``POST /hooks/{provider}/email/inbound``: a raw RFC 822 mail — a bounce, a complaint, a reply —
posted by the MTA or a relay that receives the bounce and reply addresses (e.g. a Postfix pipe to
curl, or an inbound-parse service that forwards the raw message).

The body is the mail as received, ``Content-Type: message/rfc822``; the request is signed with the
provider's shared secret (``TRATO_SMTP_INBOUND_SECRET``): ``X-Trato-Signature: sha256=<hex of
HMAC-SHA256(secret, body)>``. Without a configured secret the webhook accepts nothing.
"""

from __future__ import annotations

import hashlib
import hmac

import structlog
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from trato.core.db import unit_of_work
from trato.core.http import JSON
from trato.delivery import mailin
from trato.delivery.channels import registry
from trato.delivery.errors import BadSignature, MailTooLarge

router = APIRouter()
log = structlog.get_logger("trato.delivery.callbacks.email")
SIGNATURE_HEADER = "X-Trato-Signature"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


def sign(secret: str, body: bytes) -> str:
    """The header value a sender puts on ``body`` (for relays and tests)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@router.post("/{provider}/email/inbound", responses={401: {"description": "missing or wrong signature"},
                                                     413: {"description": "the mail is too large"}})
async def inbound_mail(provider: str, request: Request) -> JSON:
    """Receive one raw mail for ``provider`` (see the module's docstring)."""
    adapter = registry.provider(provider)
    limit = adapter.limits.max_body_bytes or DEFAULT_MAX_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise MailTooLarge(f"the mail is larger than {limit} bytes", details={"max_bytes": limit})
    body = await request.body()
    if len(body) > limit:
        raise MailTooLarge(f"the mail is larger than {limit} bytes", details={"max_bytes": limit})
    secret = getattr(adapter.settings, "inbound_secret", None)
    given = request.headers.get(SIGNATURE_HEADER, "")
    if secret is None or not hmac.compare_digest(given.encode(), sign(secret.get_secret_value(), body).encode()):
        log.warning("inbound mail refused: bad signature", provider=provider, signed=bool(given),
                    configured=secret is not None)
        raise BadSignature(f"{SIGNATURE_HEADER} is missing or does not match this provider's inbound secret"
                           if secret is not None else f"{provider} has no inbound mail secret configured",
                           details={"provider": provider})

    def apply() -> mailin.MailOutcome:
        with unit_of_work() as session:
            return mailin.receive(session, body, provider=provider)

    outcome = await run_in_threadpool(apply)
    return JSON({"action": outcome.action, "kind": outcome.kind, "message_id": outcome.message_id,
                 "suppressed": outcome.suppressed, "detail": outcome.detail})
