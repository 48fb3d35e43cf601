"""Console pages of delivery: the messages (``/messages``), filtered by state — the dead letters
and the possibly sent ones are where a person has work — and one message with its history."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from trato.console.service import Principal
from trato.console.web import NAV, NavEntry, error_page, page_router, render, requires
from trato.core.http import db_read_session
from trato.core.i18n import N_
from trato.delivery import service
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
