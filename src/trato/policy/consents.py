"""Consent changes (with history, audit and timeline), suppressions and inbound STOP / START.

Every change of a consent writes the new current state, an append-only history row with its
source and proof, an audit row and a timeline entry, in the caller's transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.orm import Session

from trato.core import audit
from trato.core.channels import ADDRESS_KIND
from trato.core.clock import utcnow
from trato.core.db import chunks
from trato.core.ids import new_id
from trato.core.settings import get_settings
from trato.customers import service as customers
from trato.customers.errors import CustomerNotFound
from trato.policy.config import check_channels, get_purpose
from trato.policy.errors import InvalidPolicy, PolicyObjectNotFound, UnknownTopic
from trato.policy.models import Consent, ConsentChange, Purpose, Suppression, Topic
from trato.policy.rules import PolicyConfig

STATES = ("granted", "denied", "pending")
SOURCES = ("form", "api", "import", "inbound", "agent", "preference_center", "double_opt_in", "unsubscribe",
           "privacy", "complaint")
SUPPRESSION_KINDS = ("email", "phone", "customer")
SUPPRESSION_REASONS = ("hard_bounce", "complaint", "stop_keyword", "legal_hold", "erased", "unsubscribe", "manual")

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "BAJA", "CANCELAR",
                        "PARAR", "ALTO", "DARSE DE BAJA", "DAR DE BAJA", "NO MAS", "NO MAS MENSAJES"})
START_WORDS = frozenset({"START", "UNSTOP", "SUBSCRIBE", "RESUME", "ALTA", "DAR DE ALTA", "REANUDAR", "SUSCRIBIR"})


def address_hash(kind: str, value: str) -> str:
    """Keyed hash of an address (or customer id): matches without keeping the address itself."""
    key = get_settings().resolved_secret_key().encode()
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def _check_topic(session: Session, purpose: str, topic: str) -> None:
    if topic and session.scalar(select(Topic.id).where(Topic.purpose == purpose, Topic.key == topic)) is None:
        raise UnknownTopic(f"purpose {purpose} has no topic {topic!r}", details={"purpose": purpose, "topic": topic})


def set_consent(
    session: Session, *, customer_id: str, channel: str, purpose: str, state: str, source: str, actor: str,
    topic: str | None = None, proof: dict[str, Any] | None = None, at: datetime | None = None,
    message_id: str | None = None, via_message_id: str | None = None,
) -> Consent:
    """Record a customer's consent (or refusal) for a purpose[/topic] on a channel.

    Giving the state it already has changes nothing; anything else becomes history with its proof,
    an audit row and a ``consent`` entry on the customer's timeline (``message_id`` names that
    entry, for callers that need it reproducible; ``via_message_id``, the message whose link the
    customer followed to make the change, goes into it so that message's campaign can count it).
    """
    customer = customers.get_customer(session, customer_id)
    check_channels([channel])
    get_purpose(session, purpose)
    topic = topic or ""
    _check_topic(session, purpose, topic)
    if state not in STATES:
        raise InvalidPolicy(f"consent state must be one of {', '.join(STATES)}", code="invalid_consent_state")
    if source not in SOURCES:
        raise InvalidPolicy(f"consent source must be one of {', '.join(SOURCES)}", code="invalid_consent_source")
    when = at or utcnow()
    current = session.scalar(select(Consent).where(
        Consent.customer_id == customer.id, Consent.channel == channel, Consent.purpose == purpose,
        Consent.topic == topic))
    previous = current.state if current is not None else "unknown"
    if current is not None and current.state == state:
        return current
    if current is None:
        current = Consent(customer_id=customer.id, channel=channel, purpose=purpose, topic=topic)
        session.add(current)
    current.state, current.source, current.updated_at = state, source, when
    session.add(ConsentChange(customer_id=customer.id, channel=channel, purpose=purpose, topic=topic, state=state,
                              previous=previous, source=source, proof=proof or {}, actor=actor, at=when))
    audit.record(session, actor=actor, action="policy.consent", object_type="customer", object_id=customer.id,
                 channel=channel, purpose=purpose, topic=topic, state=state, previous=previous, source=source)
    customers.record_event(
        session, customer_id=customer.id, kind="consent", name=f"Consent {state}", channel=channel,
        department="compliance", source_id="policy", occurred_at=when, message_id=message_id,
        properties={"purpose": purpose, "topic": topic or None, "state": state, "previous": previous,
                    "source": source, **({"via_message_id": via_message_id} if via_message_id else {})},
    )
    session.flush()
    return current


@dataclass(frozen=True, slots=True)
class ConsentInput:
    """One change for :func:`set_consents` (the arguments of :func:`set_consent`)."""

    customer_id: str
    channel: str
    purpose: str
    state: str
    source: str
    topic: str = ""
    proof: dict[str, Any] | None = None
    at: datetime | None = None
    message_id: str | None = None


def check_consent_input(session: Session, change: ConsentInput, *, config: PolicyConfig | None = None) -> None:
    """Raise the error :func:`set_consent` would raise for this change's channel, purpose, topic,
    state or source (the configuration comes from the process cache unless given)."""
    from trato.policy.config import load_config

    config = config or load_config(session)
    check_channels([change.channel])
    if change.purpose not in config.requires_consent:
        get_purpose(session, change.purpose)  # raises UnknownPurpose
    if change.topic and change.topic not in config.topics.get(change.purpose, ()):
        _check_topic(session, change.purpose, change.topic)
    if change.state not in STATES:
        raise InvalidPolicy(f"consent state must be one of {', '.join(STATES)}", code="invalid_consent_state")
    if change.source not in SOURCES:
        raise InvalidPolicy(f"consent source must be one of {', '.join(SOURCES)}", code="invalid_consent_source")


def set_consents(session: Session, changes: Sequence[ConsentInput], *, actor: str) -> int:
    """Many consent changes at once (imports, the demo): exactly what :func:`set_consent` writes for
    each one, in order (current state, history with proof, audit row, timeline entry), but read and
    written in a few statements per batch. Every change is checked before anything is written: one
    bad change raises and writes nothing. Returns how many changed something."""
    from trato.policy.config import load_config

    config = load_config(session)
    for change in changes:
        check_consent_input(session, change, config=config)
    root = {cid: customers.get_customer(session, cid).id for cid in {c.customer_id for c in changes}}
    current: dict[tuple[str, str, str, str], Consent] = {}
    for part in chunks(sorted(set(root.values())), 500):
        for consent in session.scalars(select(Consent).where(Consent.customer_id.in_(part))):
            current[(consent.customer_id, consent.channel, consent.purpose, consent.topic)] = consent
    history, audits, events = [], [], []
    now = utcnow()
    for change in changes:
        cid, when = root[change.customer_id], change.at or now
        key = (cid, change.channel, change.purpose, change.topic)
        consent = current.get(key)
        previous = consent.state if consent is not None else "unknown"
        if previous == change.state:
            continue
        if consent is None:
            consent = current[key] = Consent(customer_id=cid, channel=change.channel, purpose=change.purpose,
                                             topic=change.topic)
            session.add(consent)
        consent.state, consent.source, consent.updated_at = change.state, change.source, when
        history.append({"customer_id": cid, "channel": change.channel, "purpose": change.purpose,
                        "topic": change.topic, "state": change.state, "previous": previous, "source": change.source,
                        "proof": change.proof or {}, "actor": actor, "at": when})
        audits.append({"actor": actor, "action": "policy.consent", "object_type": "customer", "object_id": cid,
                       "details": {"channel": change.channel, "purpose": change.purpose, "topic": change.topic,
                                   "state": change.state, "previous": previous, "source": change.source}})
        events.append({"customer_id": cid, "origin_customer_id": cid, "source_id": "policy",
                       "message_id": change.message_id or new_id("evt"), "kind": "consent",
                       "name": f"Consent {change.state}", "channel": change.channel, "department": "compliance",
                       "occurred_at": when, "received_at": now, "context": {}, "revenue_cents": None,
                       "currency": None, "properties": {"purpose": change.purpose, "topic": change.topic or None,
                                                        "state": change.state, "previous": previous,
                                                        "source": change.source}})
    if history:
        session.flush()
        session.execute(insert(ConsentChange), history)
        session.execute(insert(audit.AuditEntry), audits)
        customers.record_events(session, rows=events)
    return len(history)


def consents_of(session: Session, *, customer_id: str) -> list[Consent]:
    """The customer's current consents, by channel, purpose and topic."""
    customer = customers.get_customer(session, customer_id)
    return list(session.scalars(select(Consent).where(Consent.customer_id == customer.id)
                                .order_by(Consent.channel, Consent.purpose, Consent.topic)))


def consent_history(session: Session, *, customer_id: str, limit: int = 500) -> list[ConsentChange]:
    """Every consent change of the customer, newest first."""
    customer = customers.get_customer(session, customer_id)
    return list(session.scalars(select(ConsentChange).where(ConsentChange.customer_id == customer.id)
                                .order_by(ConsentChange.at.desc(), ConsentChange.id.desc()).limit(limit)))


# -- suppressions -------------------------------------------------------------------------------


def normal_address(kind: str, value: str) -> str:
    if kind == "customer":
        return value.strip()
    return customers.normalize_identity(kind, value)[1]


def add_suppression(
    session: Session, *, kind: str, value: str, reason: str, actor: str, channel: str | None = None,
    purpose: str | None = None, expires_at: datetime | None = None, note: str | None = None,
) -> Suppression:
    """Stop contact with an address or a customer, for every channel/purpose or one of them."""
    if kind not in SUPPRESSION_KINDS:
        raise InvalidPolicy(f"suppression kind must be one of {', '.join(SUPPRESSION_KINDS)}",
                            code="invalid_suppression")
    if reason not in SUPPRESSION_REASONS:
        raise InvalidPolicy(f"suppression reason must be one of {', '.join(SUPPRESSION_REASONS)}",
                            code="invalid_suppression")
    if channel is not None:
        check_channels([channel])
    if purpose is not None:
        get_purpose(session, purpose)
    value = normal_address(kind, value)
    if kind == "customer":
        value = customers.get_customer(session, value).id
    suppression = Suppression(
        id=new_id("sup"), kind=kind, value=value, value_hash=address_hash(kind, value), reason=reason,
        channel=channel, purpose=purpose, expires_at=expires_at, note=note, actor=actor, created_at=utcnow(),
    )
    session.add(suppression)
    session.flush()
    audit.record(session, actor=actor, action="policy.suppression.add", object_type="suppression",
                 object_id=suppression.id, kind=kind, reason=reason, channel=channel, purpose=purpose)
    return suppression


def list_suppressions(session: Session, *, kind: str | None = None, value: str | None = None,
                      limit: int = 100) -> list[Suppression]:
    stmt = select(Suppression)
    if kind and value:
        stmt = stmt.where(Suppression.value_hash == address_hash(kind, normal_address(kind, value)))
    elif kind:
        stmt = stmt.where(Suppression.kind == kind)
    return list(session.scalars(stmt.order_by(Suppression.created_at.desc()).limit(limit)))


def delete_suppression(session: Session, *, suppression_id: str, actor: str) -> None:
    suppression = session.get(Suppression, suppression_id)
    if suppression is None:
        raise PolicyObjectNotFound(f"suppression {suppression_id} does not exist", code="suppression_not_found")
    if suppression.reason == "erased":
        raise InvalidPolicy("the suppression of an erased person cannot be lifted", code="suppression_permanent")
    session.delete(suppression)
    audit.record(session, actor=actor, action="policy.suppression.delete", object_type="suppression",
                 object_id=suppression_id)


# -- inbound keywords ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KeywordOutcome:
    action: str | None  # stop | start | None (not a keyword)
    customer_id: str | None
    changed: int  # consents changed


def _keyword(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^A-Za-z ]+", " ", plain).upper().split())


def handle_inbound_keyword(session: Session, *, channel: str, address: str, text: str,
                           reply_to: Callable[[str], str | None] | None = None) -> KeywordOutcome:
    """STOP / BAJA / CANCELAR / UNSUBSCRIBE / ... from an address suppresses it on that channel and
    records the refusal of every purpose that asks for consent or can be objected to; START / ALTA
    lifts the keyword's suppression and restores what that STOP refused. Other text: nothing.
    ``reply_to(customer_id)``: the message a STOP answers, if any (the refusals name it, so that
    message's campaign counts the unsubscribe)."""
    check_channels([channel])
    word = _keyword(text)
    action = "stop" if word in STOP_WORDS else "start" if word in START_WORDS else None
    if action is None:
        return KeywordOutcome(None, None, 0)
    kind = ADDRESS_KIND.get(channel)
    if kind not in ("email", "phone"):
        raise InvalidPolicy(f"keywords come by e-mail or phone, not {channel}", code="keyword_channel")
    value = normal_address(kind, address)
    try:
        customer_id: str | None = customers.lookup(session, kind=kind, value=value).id
    except CustomerNotFound:
        customer_id = None
    proof = {"message": text[:500], "address": value, "channel": channel}
    changed = 0
    if action == "stop":
        add_suppression(session, kind=kind, value=value, reason="stop_keyword", channel=channel,
                        actor=f"inbound:{channel}", note=text[:200])
        if customer_id:
            answered = reply_to(customer_id) if reply_to is not None else None
            objectable = session.scalars(select(Purpose.key).where(
                Purpose.legal_basis.in_(("consent", "legitimate_interest"))))
            for purpose in objectable:
                before = session.scalar(select(Consent.state).where(
                    Consent.customer_id == customer_id, Consent.channel == channel, Consent.purpose == purpose,
                    Consent.topic == ""))
                if before != "denied":
                    set_consent(session, customer_id=customer_id, channel=channel, purpose=purpose, state="denied",
                                source="inbound", proof=proof, actor=f"inbound:{channel}", via_message_id=answered)
                    changed += 1
    else:
        session.execute(delete(Suppression).where(
            Suppression.value_hash == address_hash(kind, value), Suppression.reason == "stop_keyword",
            or_(Suppression.channel == channel, Suppression.channel.is_(None))))
        audit.record(session, actor=f"inbound:{channel}", action="policy.suppression.lift", object_type=kind,
                     object_id=address_hash(kind, value)[:16], reason="start_keyword")
        if customer_id:
            refused = session.scalars(select(Consent).where(
                Consent.customer_id == customer_id, Consent.channel == channel, Consent.state == "denied",
                Consent.source == "inbound"))
            for consent in list(refused):
                set_consent(session, customer_id=customer_id, channel=channel, purpose=consent.purpose,
                            topic=consent.topic, state="granted", source="inbound", proof=proof,
                            actor=f"inbound:{channel}")
                changed += 1
    return KeywordOutcome(action, customer_id, changed)
