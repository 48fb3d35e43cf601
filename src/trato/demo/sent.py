"""What Trato Demo sent during its year, archived as it was sent.

The history's calls that a demo communication answers (a sign-up gets the welcome, a failed
payment the returned-payment notice, a bill issued in the last days the invoice notice) are
picked while the history is written. Once the communications are loaded, each is rendered from
the approved version at the moment it was sent and archived with that time and a message id
made from the call's own, so loading again archives nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from trato.archive import service as archive
from trato.content import service as content
from trato.core.clock import parse_timestamp
from trato.core.db import unit_of_work
from trato.core.errors import TratoError
from trato.customers import service as customers

# event: (communication key, delay after the event, how recent the event must be). The windows
# keep the archive to about 0.2 entries a customer (2,000 for the 10,000 of make run): enough
# for the inventory's volumes and the archive's pages, a small share of the demo's load time.
ANSWERS: dict[str, tuple[str, timedelta, timedelta]] = {
    "Signed Up": ("welcome", timedelta(minutes=2), timedelta(days=120)),
    "Payment Failed": ("direct-debit-failed", timedelta(hours=3), timedelta(days=180)),
    "Invoice Issued": ("invoice-ready", timedelta(minutes=30), timedelta(days=3)),
}
# Channels a demo send goes out on, best first; letters are left to the preview (a PDF each).
CHANNEL_ORDER = ("email", "sms", "whatsapp")
PER_TRANSACTION = 200


@dataclass(frozen=True, slots=True)
class Send:
    user_id: str
    key: str
    at: datetime
    message_id: str
    data: dict[str, Any]


def _data(event: str, properties: dict[str, Any]) -> dict[str, Any]:
    if event == "Invoice Issued":
        return {"invoice": properties["invoice_id"], "amount": properties["amount"], "due": properties["due_date"]}
    if event == "Payment Failed":
        return {"invoice": properties["invoice_id"], "amount": properties["amount"]}
    return {}


def sends_in(groups: Iterable[tuple[str, list[dict[str, Any]]]], *, anchor: datetime) -> list[Send]:
    """The messages the company sent in answer to these calls."""
    found: list[Send] = []
    for _, calls in groups:
        for call in calls:
            answer = ANSWERS.get(call.get("event") or "") if call.get("type") == "track" else None
            if answer is None or "userId" not in call:
                continue
            key, delay, recent = answer
            at = parse_timestamp(call["timestamp"])
            if at is None or at < anchor - recent:
                continue
            found.append(Send(call["userId"], key, at + delay, f"demo:{call['messageId']}",
                              _data(call["event"], call.get("properties") or {})))
    return found


def _channel(customer: Any, channels: Iterable[str]) -> tuple[str, str] | None:
    """The customer's preferred channel when the communication has it, else the first that reaches them."""
    address = {"email": customer.email, "sms": customer.phone, "whatsapp": customer.phone}
    available = [c for c in CHANNEL_ORDER if c in channels and address.get(c)]
    preferred = (customer.traits or {}).get("preferred_channel")
    for channel in ([preferred] if preferred in available else []) + available:
        return channel, str(address[channel])
    return None


def archive_sends(sends: list[Send]) -> int:
    """Render and archive the sends not archived yet; returns how many were archived now."""
    if not sends:
        return 0
    with unit_of_work() as session:
        by_key = {c.key: c for c in content.list_communications(session)}
        done = archive.archived_message_ids(session, message_ids=[s.message_id for s in sends])
    todo = sorted((s for s in sends if s.message_id not in done and s.key in by_key), key=lambda s: s.at)
    archived = 0
    for start in range(0, len(todo), PER_TRANSACTION):
        with unit_of_work() as session:
            for send in todo[start:start + PER_TRANSACTION]:
                archived += _archive(session, by_key[send.key], send)
    return archived


def _archive(session: Session, communication: Any, send: Send) -> bool:
    if communication.approved_version_id is None:
        return False
    try:
        customer = customers.lookup(session, kind="user_id", value=send.user_id)
    except TratoError:
        return False
    version = content.get_version(session, communication.approved_version_id)
    chosen = _channel(customer, version.content or {})
    if chosen is None:
        return False
    channel, recipient = chosen
    rendered = content.render_for_send(session, communication_id=communication.id, customer_id=customer.id,
                                       channel=channel, data=send.data or None, at=send.at)
    archive.record(
        session, customer_id=customer.id, communication_id=communication.id, version_id=rendered.version_id,
        channel=channel, language=rendered.language, recipient=recipient, parts=rendered.parts,
        render_context=rendered.context, message_id=send.message_id, sent_at=send.at,
    )
    return True
