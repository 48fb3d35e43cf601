"""What comes back from providers, in one place for every adapter's callbacks:

- :func:`apply_status` — a provider's status for a message it accepted (delivered, read, failed,
  bounced, complained). States only move forward (a late "delivered" after "read" changes
  nothing; a repeat is a no-op), each change lands on the message, the archive and the
  customer's timeline; a hard bounce suppresses the address and a complaint also records the
  refusal of the message's purpose on that channel, through the policy domain, at once.
- :func:`receive_inbound` — a message a customer sent us (SMS, WhatsApp, e-mail): stored on the
  timeline of the customer who owns the address (a new profile when nobody does), ready for the
  conversations inbox; STOP/START keywords act through the policy domain.

Callers verify the provider's signature first; these functions trust what they are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from trato.archive import service as archive
from trato.content import service as content
from trato.core.channels import ADDRESS_KIND
from trato.core.clock import utcnow
from trato.customers import service as customers
from trato.customers.errors import CustomerNotFound
from trato.delivery.errors import InvalidCallback
from trato.delivery.models import Message
from trato.delivery.service import _event, _timeline, _transition
from trato.policy import service as policy

log = structlog.get_logger("trato.delivery.feedback")

Status = Literal["delivered", "read", "failed", "bounced", "complained"]
STATUSES: tuple[str, ...] = ("delivered", "read", "failed", "bounced", "complained")
# How far along a message is; a status only applies when it moves the message forward.
_RANK = {"accepted": 1, "possibly_sent": 1, "delivered": 2, "read": 3, "failed": 4, "bounced": 4}


@dataclass(frozen=True)
class StatusOutcome:
    message_id: str | None  # None: no message has this provider id (answered, logged, ignored)
    state: str | None
    changed: bool
    suppressed: bool = False


def find_by_provider_id(session: Session, provider_message_id: str, *, provider: str | None = None) -> Message | None:
    """The message a provider knows by ``provider_message_id`` (of that provider when given)."""
    query = select(Message).where(Message.provider_message_id == provider_message_id)
    if provider is not None:
        query = query.where(Message.provider == provider)
    return session.scalars(query.limit(1)).first()


def apply_status(
    session: Session, *, provider: str, provider_message_id: str, status: str, at: datetime | None = None,
    error: str | None = None, permanent: bool = False, details: dict[str, Any] | None = None,
) -> StatusOutcome:
    """Apply one status callback (see the module's docstring). ``permanent`` marks a hard bounce or
    an address that can never receive (unknown number): it is suppressed for the channel."""
    if status not in STATUSES:
        raise InvalidCallback(f"status must be one of {', '.join(STATUSES)}", details={"status": status})
    message = find_by_provider_id(session, provider_message_id, provider=provider)
    if message is None:
        log.info("status for an unknown provider message", provider=provider, status=status)
        return StatusOutcome(None, None, False)
    session.refresh(message, with_for_update=True)
    when = at or utcnow()
    info = {k: v for k, v in (details or {}).items() if v is not None}
    key = content.get_communication(session, message.communication_id).key
    suppressed = False
    if status == "complained":
        _event(session, message, "complained", provider=provider, **info)
        suppressed = _complaint(session, message)
        archive.record_status(session, status="complained", at=when, entry_id=message.archive_entry_id,
                              details=info)
        _timeline_status(session, message, key, "complained")
        return StatusOutcome(message.id, message.state, True, suppressed)
    current = _RANK.get(message.state)
    if current is None or _RANK[status] <= current:
        _event(session, message, "ignored", status=status, provider=provider, current=message.state, **info)
        return StatusOutcome(message.id, message.state, False)
    _transition(session, message, status, error=error, provider=provider, provider_message_id=provider_message_id,
                **info)
    archive.record_status(session, status=status, at=when, entry_id=message.archive_entry_id,
                          details={"error": error, **info} if error else info)
    if status in ("failed", "bounced") and permanent:
        suppressed = _hard_bounce(session, message, error)
    _timeline(session, message, key)
    return StatusOutcome(message.id, message.state, True, suppressed)


def _address_kind(message: Message) -> str | None:
    kind = ADDRESS_KIND.get(message.channel or "")
    return kind if kind in ("email", "phone") and message.recipient else None


def _hard_bounce(session: Session, message: Message, error: str | None) -> bool:
    kind = _address_kind(message)
    if kind is None or message.recipient is None:
        return False
    policy.add_suppression(session, kind=kind, value=message.recipient, reason="hard_bounce", channel=message.channel,
                           actor=f"provider:{message.provider}", note=(error or "")[:200] or None)
    return True


def _complaint(session: Session, message: Message) -> bool:
    kind = _address_kind(message)
    if kind is None or message.recipient is None:
        return False
    policy.add_suppression(session, kind=kind, value=message.recipient, reason="complaint", channel=message.channel,
                           purpose=None, actor=f"provider:{message.provider}", note=f"complaint about {message.id}")
    if message.purpose != "transactional":
        policy.set_consent(session, customer_id=message.customer_id, channel=message.channel or "",
                           purpose=message.purpose, state="denied", source="complaint",
                           proof={"message_id": message.id, "provider": message.provider},
                           actor=f"provider:{message.provider}")
    return True


def _timeline_status(session: Session, message: Message, key: str, state: str) -> None:
    customers.record_event(
        session, customer_id=message.customer_id, kind="message_sent", name=key, channel=message.channel,
        source_id="delivery", message_id=f"{message.id}:{state}",
        properties={"message_id": message.id, "state": state, "channel": message.channel,
                    "provider_message_id": message.provider_message_id},
    )


# -- inbound ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundOutcome:
    customer_id: str
    event_id: int | None  # None: this provider message was stored already (a repeated callback)
    keyword: str | None  # stop | start | None
    created_customer: bool


def receive_inbound(
    session: Session, *, channel: str, provider: str, sender: str, text: str, provider_message_id: str,
    at: datetime | None = None, media: list[dict[str, Any]] | None = None, details: dict[str, Any] | None = None,
) -> InboundOutcome:
    """Store a message a customer sent us and act on STOP/START (see the module's docstring).

    Idempotent on (provider, provider_message_id): a callback delivered twice is stored once."""
    kind = ADDRESS_KIND.get(channel)
    if kind not in ("email", "phone"):
        raise InvalidCallback(f"inbound messages come by e-mail or phone, not {channel}", details={"channel": channel})
    created = False
    try:
        customer_id = customers.lookup(session, kind=kind, value=sender).id
    except CustomerNotFound:
        customer_id = customers.create_customer(session, traits={}, identities=[(kind, sender)],
                                                actor=f"inbound:{channel}").id
        created = True
    event = customers.record_event(
        session, customer_id=customer_id, kind="message_received", name=channel, channel=channel,
        source_id=f"inbound:{provider}"[:40], message_id=provider_message_id[:128], occurred_at=at,
        properties={"text": text[:4000], "from": sender, "provider": provider, "media": media or [],
                    **{k: v for k, v in (details or {}).items() if v is not None}},
    )
    if event is None:
        return InboundOutcome(customer_id, None, None, created)
    outcome = policy.handle_inbound_keyword(
        session, channel=channel, address=sender, text=text,
        reply_to=lambda found: replied_to(session, customer_id=found, channel=channel, at=at or utcnow()))
    return InboundOutcome(customer_id, event.id, outcome.action, created)


# A reply answers the last message sent to the customer on its channel, if that is this recent.
REPLY_WINDOW = timedelta(days=30)
_REACHED = ("accepted", "delivered", "read", "possibly_sent")


def replied_to(session: Session, *, customer_id: str, channel: str, at: datetime) -> str | None:
    """The message a customer's reply answers: the last one that reached them on ``channel`` in the
    30 days before ``at`` (a STOP to a campaign's SMS is that campaign's unsubscribe)."""
    return session.scalar(select(Message.id).where(
        Message.customer_id == customer_id, Message.created_at >= at - REPLY_WINDOW, Message.created_at <= at,
        Message.channel == channel, Message.state.in_(_REACHED)).order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1))


def last_inbound_at(session: Session, *, customer_id: str, channel: str) -> datetime | None:
    """When the customer last wrote to us on ``channel`` (WhatsApp's 24-hour service window)."""
    return customers.last_event_at(session, customer_id=customer_id, kind="message_received", channel=channel)
