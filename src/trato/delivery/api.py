"""HTTP routes of delivery: ``POST /api/v1/messages`` (send, editor role) and
``GET /api/v1/messages/{id}`` (its states, viewer role)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header
from sqlalchemy.orm import Session

from trato.console.auth import require
from trato.console.service import Principal
from trato.core.http import JSON, db_read_session, db_session
from trato.delivery import idempotency, service
from trato.delivery.schemas import MessageOut, SendIn

router = APIRouter(prefix="/api/v1/messages", tags=["delivery"])
ACCEPTED = 202


@router.post("", status_code=ACCEPTED, response_model=MessageOut,
             responses={409: {"description": "a request with this Idempotency-Key is still in flight"},
                        422: {"description": "invalid request, or this Idempotency-Key came with another body"}})
def send_message(
    body: SendIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", min_length=1, max_length=255),
    session: Session = Depends(db_session),
    who: Principal = Depends(require("editor")),
) -> JSON:
    """Send a communication to a customer: decided by the contact policy, rendered, archived and
    queued; deferred or refused with the reasons when the policy says so."""
    principal = f"{who.kind}:{who.id}"
    if idempotency_key is not None:
        replay = idempotency.claim(principal=principal, key=idempotency_key,
                                   body_sha256=idempotency.request_hash(body.model_dump(mode="json")))
        if replay is not None:
            return JSON(replay.response, status_code=replay.status_code, headers={"Idempotent-Replayed": "true"})
    try:
        kind, value = body.customer.reference()
        customer_id = service.resolve_customer(session, kind=kind, value=value)
        message = service.send(session, actor=who.actor, customer_id=customer_id, communication=body.communication,
                               data=body.data, channels=list(body.channels) if body.channels else None,
                               purpose=body.purpose, topic=body.topic, idempotency_key=idempotency_key)
        payload = MessageOut.of(message, service.events_of(session, message.id)).model_dump(mode="json")
        if idempotency_key is not None:
            idempotency.complete(session, principal=principal, key=idempotency_key, status_code=ACCEPTED,
                                 response=payload, message_id=message.id)
        session.flush()
    except BaseException:
        session.rollback()
        if idempotency_key is not None:
            idempotency.release(principal=principal, key=idempotency_key)
        raise
    # Past this point the send is done: a key whose commit failed stays claimed until it is stale.
    session.commit()
    return JSON(payload, status_code=ACCEPTED)


@router.get("/{message_id}", response_model=MessageOut)
def get_message(message_id: str, session: Session = Depends(db_read_session),
                _: Principal = Depends(require("viewer"))) -> MessageOut:
    """A message, its policy decision and every state it went through."""
    message = service.get_message(session, message_id)
    return MessageOut.of(message, service.events_of(session, message.id))
