"""Console pages of delivery: the messages (``/messages``), filtered by state — the dead letters
and the possibly sent ones are where a person has work — and one message with its history; the
providers (``/providers``, admins) with their circuits and a button to test each one; what the
sandbox provider "sent" (``/sandbox``), as the recipient would have received it."""

from __future__ import annotations

from fastapi import Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from trato.console import session as sessions
from trato.console.service import Principal
from trato.console.web import NAV, NavEntry, error_page, page_router, render, requires
from trato.core.http import db_read_session
from trato.core.i18n import N_
from trato.core.errors import TratoError
from trato.delivery import providers, service
from trato.delivery.errors import MessageNotFound
from trato.delivery.models import STATES

router = page_router(prefix="/messages")
NAV.append(NavEntry("/messages", N_("Messages")))

PAGE = 100
STATE_LABELS = {
    "decided": N_("decided"), "deferred": N_("deferred"), "refused": N_("refused by policy"),
    "queued": N_("queued"), "sending": N_("sending"), "retrying": N_("waiting to retry"),
    "accepted": N_("accepted by provider"), "delivered": N_("delivered"), "failed": N_("failed"),
    "bounced": N_("bounced"), "dead": N_("dead letter"), "possibly_sent": N_("possibly sent"),
    "read": N_("read"), "complained": N_("marked as spam"), "ignored": N_("late status ignored"),
    "failover": N_("failed over"), "failover_refused": N_("no other channel allowed"),
}


@router.get("")
def messages_page(request: Request, state: str = "", customer: str = "",
                  session: Session = Depends(db_read_session),
                  _: Principal = Depends(requires("viewer"))) -> Response:
    chosen = state if state in STATES else ""
    customer_id = customer.strip()[:64]
    messages = service.list_messages(session, state=chosen or None, customer_id=customer_id or None, limit=PAGE)
    return render(request, "delivery/messages.html", messages=messages, states=STATES, labels=STATE_LABELS,
                  form={"state": chosen, "customer": customer_id})


@router.get("/{message_id}")
def message_page(request: Request, message_id: str, session: Session = Depends(db_read_session),
                 _: Principal = Depends(requires("viewer"))) -> Response:
    try:
        message = service.get_message(session, message_id)
    except MessageNotFound:
        return error_page(request, 404, N_("No message has this id."))
    return render(request, "delivery/message.html", message=message, events=service.events_of(session, message.id),
                  labels=STATE_LABELS)


providers_router = page_router(prefix="/providers")
NAV.append(NavEntry("/providers", N_("Providers")))
CIRCUIT_LABELS = {"closed": N_("working"), "open": N_("out of service (circuit open)"),
                  "half_open": N_("being probed")}
ORIGIN_LABELS = {"settings": N_("settings"), "database": N_("console / API")}


def _providers_page(request: Request, session: Session, *, status_code: int = 200, tested: str | None = None,
                    result: object = None) -> Response:
    return render(request, "delivery/providers.html", status_code=status_code,
                  providers=providers.list_providers(session), circuits=CIRCUIT_LABELS, origins=ORIGIN_LABELS,
                  tested=tested, result=result)


@providers_router.get("")
def providers_page(request: Request, session: Session = Depends(db_read_session),
                   _: Principal = Depends(requires("admin"))) -> Response:
    return _providers_page(request, session)


@providers_router.post("/{name}/test")
def test_provider(request: Request, name: str, csrf: str = Form(""), session: Session = Depends(db_read_session),
                  _: Principal = Depends(requires("admin"))) -> Response:
    if not sessions.csrf_valid(sessions.load(request), csrf):
        return error_page(request, 403, N_("The form has expired. Please try again."))
    try:
        result = providers.check_provider(session, name=name)
    except TratoError:
        return error_page(request, 404, N_("No provider has this name."))
    return _providers_page(request, session, tested=name, result=result)


sandbox_router = page_router(prefix="/sandbox")
NAV.append(NavEntry("/sandbox", N_("Sandbox")))
SANDBOX_PAGE = 200


@sandbox_router.get("")
def sandbox_page(request: Request, channel: str = "", session: Session = Depends(db_read_session),
                 _: Principal = Depends(requires("viewer"))) -> Response:
    """What the sandbox providers of this process accepted, newest first: the demo's "outbox"."""
    from trato.core.channels import CHANNEL_LABELS, CHANNELS
    from trato.delivery.channels import registry

    chosen = channel if channel in CHANNELS else ""
    records = sorted((record for sandbox in registry.sandboxes(session=session)
                      for record in sandbox.recent(channel=chosen or None, limit=SANDBOX_PAGE)),
                     key=lambda r: r.at, reverse=True)[:SANDBOX_PAGE]
    shown = [{"at": r.at, "channel": r.message.channel, "recipient": r.message.recipient,
              "message_id": r.message.message_id, "provider_message_id": r.provider_message_id,
              "language": r.message.language, "parts": _readable_parts(r.message.parts)} for r in records]
    return render(request, "delivery/sandbox.html", records=shown, channels=CHANNELS, labels=CHANNEL_LABELS,
                  form={"channel": chosen})


def _readable_parts(parts: dict[str, str | bytes]) -> list[tuple[str, str]]:
    # Text parts as text (escaped by the template); binary parts (a letter's PDF) by their size.
    shown: list[tuple[str, str]] = []
    for name, value in parts.items():
        if name == "html":
            continue  # the text part says the same; HTML is previewed in the communication's page
        if isinstance(value, bytes):
            shown.append((name, f"{len(value):,} bytes"))
        elif value:
            shown.append((name, value if len(value) <= 2000 else value[:2000] + "…"))
    return shown
