"""The contact policy's public face: the single gate every send passes through.

``decide`` answers send / defer / refuse for one customer from the database (and, with
``reserve``, books the send in the contact ledger under a per-customer lock so that concurrent
deciders never exceed a cap); ``decide_many`` does the same over prepared customer data without
SQL; ``record_contact`` is what delivery calls for every message actually sent. Consents,
suppressions, keywords, links and privacy requests are re-exported from their modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, union_all, update
from sqlalchemy.orm import Session

from trato.core import audit, i18n
from trato.core.channels import ADDRESS_KIND
from trato.core.clock import as_utc, utcnow
from trato.core.db import chunks, insert_for, next_ids
from trato.core.settings import get_settings
from trato.customers import service as customers
from trato.customers import writes
from trato.policy import config as policy_config
from trato.policy import privacy
from trato.policy.config import (  # noqa: F401  (re-exported)
    DEFAULT_PURPOSES,
    check_request, create_cap, create_purpose, create_topic, delete_cap, delete_purpose, delete_quiet_hours,
    delete_topic, install_defaults, list_caps, list_purposes, list_quiet_hours, load_config, set_quiet_hours,
    update_purpose,
)
from trato.policy.consents import (  # noqa: F401  (re-exported)
    ConsentInput, KeywordOutcome, add_suppression, address_hash, consent_history, consents_of, delete_suppression,
    handle_inbound_keyword, list_suppressions, set_consent, set_consents,
)
from trato.policy.errors import BadLink, InvalidPolicy, PolicyObjectNotFound
from trato.policy.links import make_url
from trato.policy.models import Consent, ContactLedger, ContactPreference, DecisionLog, Suppression
from trato.policy.quiet import customer_zone
from trato.policy.rules import (
    FREQUENCY_WINDOWS, REASON_LABELS, ActiveSuppression, ConsentState, Contact, CustomerContext, Decision,
    PolicyConfig, evaluate,
)

# The channels a suppressed e-mail address or phone number stops.
ADDRESS_CHANNELS = {kind: tuple(sorted(ch for ch, k in ADDRESS_KIND.items() if k == kind)) for kind in ("email", "phone")}


# -- preparing customers ------------------------------------------------------------------------


def _reachable(kinds: dict[str, list[str]], traits: dict[str, Any]) -> frozenset[str]:
    reachable = {channel for channel, kind in ADDRESS_KIND.items() if kinds.get(kind)}
    if kinds.get("user_id") or kinds.get("anonymous_id"):
        reachable.add("web")
    address = traits.get("address")
    if isinstance(address, dict | str) and address:
        reachable.add("letter")
    reachable.add("webhook")  # the company's own endpoint reaches every customer
    return frozenset(reachable)


def _history_window(config: PolicyConfig) -> timedelta:
    windows = [cap.window for cap in config.caps] + list(FREQUENCY_WINDOWS.values())
    return max(windows)


def prepare_contexts(session: Session, *, customer_ids: Sequence[str], config: PolicyConfig,
                     at: datetime, loaded: Mapping[str, Any] | None = None) -> dict[str, CustomerContext]:
    """Everything decisions need about these customers (profiles as stored, by id), in a few
    queries per 500 customers; the result feeds :func:`decide_many`. ``loaded``: their profiles
    and identities as ``customers.load_profiles`` read them already (a campaign chunk)."""
    default_zone = get_settings().default_timezone
    since = as_utc(at) - _history_window(config)
    found: dict[str, CustomerContext] = {}
    for part in chunks(sorted(set(customer_ids)), 500):
        # Columns, not ORM objects: a campaign chunk reads 500 profiles, consents and preferences.
        c = customers.Customer
        profiles: dict[str, Any]
        kinds: dict[str, dict[str, list[str]]]
        source = loaded
        if source is None and len(part) > 1:
            source = customers.load_profiles(session, part)
        if source is not None:
            profiles = {cid: source[cid].row for cid in part if cid in source}
            kinds = {cid: source[cid].identities for cid in profiles}
        else:  # one decision: the profile is usually in the session already
            one = session.get(c, part[0])
            profiles = {one.id: one} if one is not None else {}
            kinds = {cid: {} for cid in profiles}
            for cid, kind, value in session.execute(select(
                    customers.Identity.customer_id, customers.Identity.kind, customers.Identity.value)
                    .where(customers.Identity.customer_id == part[0]).order_by(customers.Identity.id)):
                kinds[cid].setdefault(kind, []).append(value)
        hashes: dict[str, list[tuple[str, str]]] = {}
        for cid in profiles:
            hashes.setdefault(address_hash("customer", cid), []).append((cid, "customer"))
            for kind in ("email", "phone"):
                for value in kinds[cid].get(kind, []):
                    hashes.setdefault(address_hash(kind, value), []).append((cid, kind))
        suppressions: dict[str, list[ActiveSuppression]] = {cid: [] for cid in profiles}
        for s in session.execute(select(Suppression.value_hash, Suppression.expires_at, Suppression.channel,
                                        Suppression.reason, Suppression.purpose)
                                 .where(Suppression.value_hash.in_(list(hashes)))):
            expires_at = as_utc(s.expires_at) if s.expires_at is not None else None
            if expires_at is not None and expires_at <= at:
                continue
            for cid, kind in hashes[s.value_hash]:
                channels = [s.channel] if s.channel else list(ADDRESS_CHANNELS.get(kind, [None]))
                for channel in channels:
                    suppressions[cid].append(ActiveSuppression(s.reason, channel, s.purpose, expires_at))
        # Consents and sends recorded under profiles merged into these ones count for them too.
        root = {cid: cid for cid in profiles}
        frontier = list(profiles)
        while frontier:
            children = session.execute(select(customers.Customer.id, customers.Customer.merged_into_id)
                                       .where(customers.Customer.merged_into_id.in_(frontier))).all()
            frontier = [child for child, parent in children if child not in root]
            root.update({child: root[parent] for child, parent in children})
        owners = list(root)
        consents: dict[str, dict[tuple[str, str, str], ConsentState]] = {cid: {} for cid in profiles}
        for k in session.execute(select(Consent.customer_id, Consent.channel, Consent.purpose, Consent.topic,
                                        Consent.state, Consent.source, Consent.updated_at)
                                 .where(Consent.customer_id.in_(owners))
                                 .order_by(Consent.updated_at, Consent.id)):  # the newest wins
            consents[root[k.customer_id]][(k.channel, k.purpose, k.topic)] = ConsentState(
                k.state, k.source, as_utc(k.updated_at))
        contacts: dict[str, list[Contact]] = {cid: [] for cid in profiles}
        for row in session.execute(select(ContactLedger.customer_id, ContactLedger.sent_at, ContactLedger.channel,
                                          ContactLedger.purpose, ContactLedger.communication)
                                   .where(ContactLedger.customer_id.in_(owners), ContactLedger.sent_at > since,
                                          ContactLedger.status != "released")
                                   .order_by(ContactLedger.sent_at)):
            contacts[root[row[0]]].append(Contact(row[1], row[2], row[3], row[4]))
        preferences = {p.customer_id: p for p in session.execute(
            select(ContactPreference.customer_id, ContactPreference.preferred_channel, ContactPreference.frequency)
            .where(ContactPreference.customer_id.in_(part)))}
        for cid, customer in profiles.items():
            traits = customer.traits or {}
            preference = preferences.get(cid)
            trait_channel = traits.get("preferred_channel")
            phones = kinds[cid].get("phone", [])
            found[cid] = CustomerContext(
                customer_id=cid,
                zone=customer_zone(profile_zone=customer.timezone, phone=phones[0] if phones else None,
                                   default=default_zone),
                reachable=_reachable(kinds[cid], traits),
                consents=consents[cid],
                suppressions=tuple(suppressions[cid]),
                contacts=tuple(contacts[cid]),
                preferred_channel=(preference.preferred_channel if preference and preference.preferred_channel
                                   else trait_channel if isinstance(trait_channel, str) else None),
                frequency=preference.frequency if preference else "normal",
            )
    return found



# -- deciding -----------------------------------------------------------------------------------


def _lock_customer(session: Session, customer_id: str) -> None:
    """Serialise deciders of one customer: PostgreSQL locks the customer's preference row;
    SQLite's BEGIN IMMEDIATE has already serialised every writer."""
    session.execute(insert_for(session)(ContactPreference).values(
        customer_id=customer_id, frequency="normal", updated_at=utcnow()).on_conflict_do_nothing(
        index_elements=["customer_id"]))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(ContactPreference.customer_id).where(ContactPreference.customer_id == customer_id)
                        .with_for_update())


def decide(
    session: Session, *, customer_id: str, communication: str, purpose: str, channels: Sequence[str],
    at: datetime | None = None, topic: str | None = None, reserve: bool = False, log: bool = True,
) -> Decision:
    """May ``communication`` (for ``purpose``[/``topic``]) reach this customer, on which channel, when?

    ``channels`` is the communication's fallback order; the customer's preferred channel goes first
    when it is among them. With ``reserve`` a ``send`` also books the message in the contact ledger
    (confirm with :func:`record_contact`, or :func:`release_reservation` if it is not sent), under
    a per-customer lock: concurrent deciders never exceed a cap. Every decision is logged unless
    ``log`` is false (dry runs).
    """
    at = as_utc(at) if at is not None else utcnow()
    config = load_config(session)
    check_request(config, purpose=purpose, channels=list(channels), topic=topic or "")
    customer = customers.get_customer(session, customer_id)
    if reserve:
        _lock_customer(session, customer.id)
    ctx = prepare_contexts(session, customer_ids=[customer.id], config=config, at=at)[customer.id]
    decision = evaluate(config, ctx, communication=communication, purpose=purpose, channels=list(channels), at=at,
                        topic=topic or "")
    if reserve and decision.outcome == "send" and decision.channel:
        entry = ContactLedger(customer_id=customer.id, channel=decision.channel, purpose=purpose, topic=topic or "",
                              communication=communication, sent_at=at, status="reserved")
        session.add(entry)
        session.flush()
        decision.reservation_id = entry.id
    if log:
        log_decisions(session, [(customer.id, communication, purpose, topic or "", decision)])
    return decision


def decide_many(
    prepared: Iterable[CustomerContext], *, config: PolicyConfig, communication: str, purpose: str,
    channels: Sequence[str], at: datetime, topic: str | None = None,
) -> list[Decision]:
    """Decisions for many prepared customers (see :func:`prepare_contexts`), without SQL."""
    check_request(config, purpose=purpose, channels=list(channels), topic=topic or "")
    order = list(channels)
    at = as_utc(at)
    return [evaluate(config, ctx, communication=communication, purpose=purpose, channels=order, at=at,
                     topic=topic or "") for ctx in prepared]


def log_decisions(session: Session, items: Sequence[tuple[str, str, str, str, Decision]]) -> None:
    """Keep decisions compactly: (customer, communication, purpose, topic, decision) each."""
    now = utcnow()
    rows = [
        {"customer_id": cid, "communication": communication, "purpose": purpose, "topic": topic,
         "outcome": d.outcome, "channel": d.channel, "at": d.at or now, "reasons": d.compact(), "decided_at": now}
        for cid, communication, purpose, topic, d in items
    ]
    writes.insert_many(session.connection(), DecisionLog.__table__, rows)


def decisions_of(session: Session, *, customer_id: str, limit: int = 100) -> list[DecisionLog]:
    """Why this customer got (or did not get) each message, newest first."""
    return list(session.scalars(select(DecisionLog).where(DecisionLog.customer_id == customer_id)
                                .order_by(DecisionLog.decided_at.desc(), DecisionLog.id.desc()).limit(limit)))


# -- the contact ledger -------------------------------------------------------------------------


def record_contact(
    session: Session, *, customer_id: str, channel: str, purpose: str, communication: str,
    topic: str | None = None, sent_at: datetime | None = None, message_id: str | None = None,
    reservation_id: int | None = None,
) -> None:
    """Delivery calls this for every message actually sent: caps count from the ledger.

    With the ``reservation_id`` of a ``decide(reserve=True)`` the booked entry is confirmed instead
    of counted twice; a repeated ``message_id`` changes nothing.
    """
    if reservation_id is not None:
        entry = session.get(ContactLedger, reservation_id)
        if entry is None:
            raise PolicyObjectNotFound(f"reservation {reservation_id} does not exist", code="reservation_not_found")
        entry.status, entry.message_id = "sent", message_id or entry.message_id
        if sent_at is not None:
            entry.sent_at = as_utc(sent_at)
        session.flush()
        return
    customer = customers.get_customer(session, customer_id)
    session.execute(insert_for(session)(ContactLedger).values(
        customer_id=customer.id, channel=channel, purpose=purpose, topic=topic or "", communication=communication,
        sent_at=as_utc(sent_at) if sent_at else utcnow(), status="sent", message_id=message_id,
    ).on_conflict_do_nothing(index_elements=["message_id"]))


def release_reservation(session: Session, *, reservation_id: int) -> None:
    """A reserved send that will not go out stops counting against the caps."""
    session.execute(update(ContactLedger).where(ContactLedger.id == reservation_id,
                                                ContactLedger.status == "reserved").values(status="released"))


def get_preference(session: Session, *, customer_id: str) -> ContactPreference | None:
    return session.get(ContactPreference, customers.get_customer(session, customer_id).id)


def set_preference(session: Session, *, customer_id: str, actor: str, preferred_channel: str | None = None,
                   frequency: str | None = None) -> ContactPreference:
    """The customer's preferred channel (``""`` clears it) and frequency (normal, weekly, monthly)."""
    customer = customers.get_customer(session, customer_id)
    if preferred_channel:
        policy_config.check_channels([preferred_channel])
    if frequency is not None and frequency not in ("normal", *FREQUENCY_WINDOWS):
        raise InvalidPolicy("frequency must be normal, weekly or monthly", code="invalid_frequency")
    preference = session.get(ContactPreference, customer.id)
    if preference is None:
        preference = ContactPreference(customer_id=customer.id, frequency="normal")
        session.add(preference)
    if preferred_channel is not None:
        preference.preferred_channel = preferred_channel or None
    if frequency is not None:
        preference.frequency = frequency
    preference.updated_at = utcnow()
    session.flush()
    audit.record(session, actor=actor, action="policy.preference", object_type="customer", object_id=customer.id,
                 preferred_channel=preference.preferred_channel, frequency=preference.frequency)
    return preference


def consent_summary(session: Session, *, customer_id: str) -> list[dict[str, Any]]:
    """The customer's current consents as plain data, for the 360° view."""
    return [
        {"channel": c.channel, "purpose": c.purpose, "topic": c.topic or None, "state": c.state, "source": c.source,
         "updated_at": c.updated_at}
        for c in session.scalars(select(Consent).where(Consent.customer_id == customer_id)
                                 .order_by(Consent.purpose, Consent.topic, Consent.channel))
    ]


# -- links for the customer's side --------------------------------------------------------------


def preference_url(customer_id: str, *, message_id: str | None = None) -> str:
    """The customer's own preference center (signed, valid 30 days), for e-mail footers and headers.
    ``message_id``: the message it is sent in; consents withdrawn there name it on the timeline."""
    return make_url("preferences", {"c": customer_id, **({"msg": message_id} if message_id else {})})


def unsubscribe_url(customer_id: str, purpose: str, topic: str | None, channel: str, *,
                    message_id: str | None = None) -> str:
    """The ``List-Unsubscribe`` URL (RFC 8058): a POST to it unsubscribes at once, a GET only asks.

    Send it with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``. ``message_id``: the message
    it is sent in; the unsubscribe names it on the timeline (a campaign counts it).
    """
    return make_url("unsubscribe", {"c": customer_id, "p": purpose, "t": topic or "", "ch": channel,
                                    **({"msg": message_id} if message_id else {})})


def request_email_opt_in(session: Session, *, customer_id: str, purpose: str, actor: str, topic: str | None = None,
                         source: str = "form", proof: dict[str, Any] | None = None) -> str:
    """E-mail double opt-in: the consent is recorded as pending and counts only once the customer
    follows the returned confirmation link (valid 7 days), which delivery sends them."""
    customer = customers.get_customer(session, customer_id)
    current = session.scalar(select(Consent.state).where(
        Consent.customer_id == customer.id, Consent.channel == "email", Consent.purpose == purpose,
        Consent.topic == (topic or "")))
    if current != "granted":  # asking again never takes back a confirmed consent
        set_consent(session, customer_id=customer.id, channel="email", purpose=purpose, topic=topic,
                    state="pending", source=source, proof=proof, actor=actor)
    return make_url("confirm", {"c": customer.id, "p": purpose, "t": topic or ""})


def confirm_email_opt_in(session: Session, *, customer_id: str, purpose: str, topic: str | None,
                         proof: dict[str, Any]) -> None:
    """The customer followed the confirmation link: a pending e-mail consent becomes granted.

    A request withdrawn since (refused, unsubscribed) is not revived by an old link.
    """
    customer = customers.get_customer(session, customer_id)
    current = session.scalar(select(Consent.state).where(
        Consent.customer_id == customer.id, Consent.channel == "email", Consent.purpose == purpose,
        Consent.topic == (topic or "")))
    if current == "granted":
        return
    if current != "pending":
        raise BadLink("there is no pending request to confirm", code="nothing_to_confirm")
    set_consent(session, customer_id=customer.id, channel="email", purpose=purpose, topic=topic, state="granted",
                source="double_opt_in", proof=proof, actor=f"customer:{customer.id}")


# -- privacy requests ---------------------------------------------------------------------------


def export_customer(session: Session, *, customer_id: str, actor: str) -> dict[str, Any]:
    """Everything trato holds about a person, as one JSON-ready archive (audited)."""
    return privacy.export_customer(session, customer_id=customer_id, actor=actor)


def erase_customer(session: Session, *, customer_id: str, actor: str) -> dict[str, Any]:
    """Erase a person's personal data everywhere, keeping counts and hashed suppressions (audited)."""
    return privacy.erase_customer(session, customer_id=customer_id, actor=actor)


def customers_with_consents(session: Session, *, customer_ids: Sequence[str]) -> set[str]:
    """Which of these customers have any consent recorded."""
    found: set[str] = set()
    for part in chunks(list(customer_ids), 500):
        found.update(session.scalars(select(Consent.customer_id).where(Consent.customer_id.in_(part)).distinct()))
    return found


def customer_panel(session: Session, *, customer_id: str, lang: str, decisions: int = 10) -> dict[str, Any]:
    """The contact policy's part of the console's 360° page: current consents and the latest
    decisions with their reasons in ``lang``."""
    return {
        "consents": consent_summary(session, customer_id=customer_id),
        "decisions": [
            {"decided_at": d.decided_at, "communication": d.communication, "purpose": d.purpose,
             "topic": d.topic or None, "outcome": d.outcome, "channel": d.channel, "at": d.at,
             "reasons": [f"{channel}: {i18n.gettext(lang, REASON_LABELS.get(code, code))}"
                         for channel, code, _until in d.reasons]}
            for d in decisions_of(session, customer_id=customer_id, limit=decisions)
        ],
    }



# -- for segments: consent and reachability as SQL over many customers ---------------------------


def consent_holders(*, channel: str, purpose: str, state: str, topic: str = "") -> Any:
    """A SELECT of the profile ids whose recorded consent for ``purpose``[/``topic``] on ``channel``
    is ``state`` (as recorded: a profile merged away keeps its rows; segments map them to the survivor)."""
    return select(Consent.customer_id).where(Consent.channel == channel, Consent.purpose == purpose,
                                             Consent.topic == topic, Consent.state == state)


def address_holders(*, channel: str) -> Any:
    """A SELECT of the profile ids with an address on ``channel`` (None for ``letter``: its address
    is a trait), the same rule as decisions use."""
    if channel == "web":
        kinds = ["user_id", "anonymous_id"]
    elif channel in ADDRESS_KIND:
        kinds = [ADDRESS_KIND[channel]]
    else:
        return None
    return select(customers.Identity.customer_id).where(customers.Identity.kind.in_(kinds))


def suppressed_holders(*, channel: str, purpose: str | None, at: datetime) -> Any:
    """A SELECT of the profile ids suppressed on ``channel`` at ``at`` — the customer itself, or one of
    its addresses that reach this channel — by a suppression for every purpose (or for ``purpose``)."""
    s = Suppression.__table__.c
    active = [or_(s.expires_at.is_(None), s.expires_at > as_utc(at)),
              or_(s.channel.is_(None), s.channel == channel),
              s.purpose.is_(None) if purpose is None else or_(s.purpose.is_(None), s.purpose == purpose)]
    by_customer = select(s.value).where(s.kind == "customer", s.value.is_not(None), *active)
    kind = ADDRESS_KIND.get(channel)
    if kind not in ("email", "phone"):
        return by_customer
    i = customers.Identity.__table__.c
    by_address = (select(i.customer_id).select_from(customers.Identity.__table__.join(
        Suppression.__table__, and_(s.kind == i.kind, s.value == i.value))).where(i.kind == kind, *active))
    return union_all(by_customer, by_address)


# -- bulk sends (campaigns) -----------------------------------------------------------------------


def contact_counts(session: Session, *, customer_ids: Sequence[str], config: PolicyConfig,
                   at: datetime) -> dict[str, int]:
    """How many contacts (booked or sent) each customer has within the longest cap window: what a
    bulk sender reads when deciding and again when it writes, to find customers contacted meanwhile."""
    since = as_utc(at) - _history_window(config)
    found: dict[str, int] = {}
    for part in chunks(sorted(set(customer_ids)), 500):
        found.update(session.execute(
            select(ContactLedger.customer_id, func.count()).where(
                ContactLedger.customer_id.in_(part), ContactLedger.sent_at > since,
                ContactLedger.status != "released").group_by(ContactLedger.customer_id)).all())
    return found


def lock_customers(session: Session, customer_ids: Sequence[str]) -> None:
    """:func:`_lock_customer` for many customers at once (in id order, so two bulk senders never
    deadlock): from here to the commit no other decider books a contact for them."""
    if session.get_bind().dialect.name != "postgresql" or not customer_ids:
        return  # SQLite's BEGIN IMMEDIATE has already serialised every writer
    ordered = sorted(set(customer_ids))
    now = utcnow()
    session.execute(insert_for(session)(ContactPreference).on_conflict_do_nothing(index_elements=["customer_id"]),
                    [{"customer_id": cid, "frequency": "normal", "updated_at": now} for cid in ordered])
    for part in chunks(ordered, 500):
        session.execute(select(ContactPreference.customer_id).where(ContactPreference.customer_id.in_(part))
                        .order_by(ContactPreference.customer_id).with_for_update())


def reserve_many(session: Session, items: Sequence[dict[str, Any]]) -> list[int]:
    """Book many decided sends in the contact ledger at once (the bulk form of ``decide(reserve=True)``):
    each item has customer_id, channel, purpose, communication, sent_at and optionally topic and
    message_id. Returns the reservation ids in the items' order."""
    if not items:
        return []
    rows = [{"customer_id": i["customer_id"], "channel": i["channel"], "purpose": i["purpose"],
             "topic": i.get("topic") or "", "communication": i["communication"], "sent_at": as_utc(i["sent_at"]),
             "status": "reserved", "message_id": i.get("message_id")} for i in items]
    table = ContactLedger.__table__
    ids = next_ids(session, table, len(rows))
    for row, reservation_id in zip(rows, ids, strict=True):
        row["id"] = reservation_id
    writes.insert_many(session.connection(), table, rows)
    return ids


def confirm_many(session: Session, *, reservation_ids: Sequence[int], sent_at: datetime | None = None) -> None:
    """Reserved sends that went out: they count as sent (the bulk form of ``record_contact``)."""
    values: dict[str, Any] = {"status": "sent"}
    if sent_at is not None:
        values["sent_at"] = as_utc(sent_at)
    for part in chunks(list(reservation_ids), 500):
        session.execute(update(ContactLedger).where(ContactLedger.id.in_(part), ContactLedger.status == "reserved")
                        .values(**values).execution_options(synchronize_session=False))


def release_many(session: Session, *, reservation_ids: Sequence[int]) -> None:
    """Reserved sends that will not go out stop counting against the caps."""
    for part in chunks(list(reservation_ids), 500):
        session.execute(update(ContactLedger).where(ContactLedger.id.in_(part), ContactLedger.status == "reserved")
                        .values(status="released").execution_options(synchronize_session=False))
