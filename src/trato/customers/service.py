"""The customer memory's public face: other domains and the API call these functions only.

Functions take the session first and keyword-only arguments after it; none commits.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import phonenumbers
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from trato.core import audit
from trato.core.clock import iso, utcnow
from trato.core.db import chunks, insert_for
from trato.core.ids import new_id
from trato.core.settings import get_settings
from trato.customers import computed, erasure, merges, writes
from trato.customers.errors import CustomerNotFound, IdentityTaken, InvalidTrait
from trato.customers.identities import normalize as normalize_identity
from trato.customers.models import Customer, CustomerMerge, CustomerRevenue, Event, EventRollup, Identity
from trato.customers.resolution import Observation, Resolution, Resolver
from trato.customers.traits import MAX_TRAITS_BYTES, typed_columns

__all__ = [
    "Customer", "CustomerMerge", "Event", "Identity", "Observation", "Resolution", "Resolver",
    "normalize_identity", "check_traits", "get_customer", "profile_traits", "lookup",
    "search", "timeline", "timeline_facets", "event_counts", "merge_log", "merge", "unmerge", "record_event",
    "create_customer", "set_traits", "add_identity", "rebuild_computed", "erase_personal_data", "react_to_events",
    "merged_into", "current_profiles", "Loaded", "load_profiles",
]

TIMELINE_KINDS = (
    "identify", "track", "page", "screen", "group", "alias", "purchase",
    "message_sent", "message_received", "case", "consent", "note",
)


def check_traits(traits: dict[str, Any]) -> None:
    """Refuse traits that are too large or whose well-known values are wrong."""
    if not traits:  # most tracked calls carry none
        return
    try:
        size = len(orjson.dumps(traits))
    except TypeError:
        raise InvalidTrait("traits must be plain JSON; numbers must fit in 64 bits") from None
    if size > MAX_TRAITS_BYTES:
        raise InvalidTrait(f"traits exceed {MAX_TRAITS_BYTES // 1024} KB")
    typed_columns(traits)


def get_customer(session: Session, customer_id: str, *, follow_merges: bool = True) -> Customer:
    """A profile by trato id; a merged id leads to the profile it was merged into."""
    customer = session.get(Customer, customer_id)
    seen = 0
    while customer is not None and customer.merged_into_id and follow_merges and seen < 50:
        customer = session.get(Customer, customer.merged_into_id)
        seen += 1
    if customer is None:
        raise CustomerNotFound(f"customer {customer_id} does not exist", details={"customer_id": customer_id})
    return customer


def profile_traits(
    session: Session, *, customer_ids: Iterable[str]
) -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
    """Copies of the traits and trait times of many profiles by id, in one query per 500 ids.

    The profiles are read as stored, merged or not; an id without a profile is left out.
    """
    return writes.profile_traits(session.connection(), sorted(set(customer_ids)))


def lookup(session: Session, *, kind: str, value: str) -> Customer:
    """The profile that owns an identity (kind and value normalised first)."""
    kind, value = normalize_identity(kind, value)
    customer_id = session.scalar(select(Identity.customer_id).where(Identity.kind == kind, Identity.value == value))
    if customer_id is None:
        raise CustomerNotFound(f"no customer has {kind} {value}", details={"kind": kind, "value": value})
    return get_customer(session, customer_id)


def search(session: Session, *, query: str, limit: int = 20) -> list[Customer]:
    """Profiles whose name, e-mail, phone or any identity starts with ``query``."""
    text = query.strip()
    if not text:
        return []
    lowered = text.lower()
    stmt: Select[Any] = select(Customer).where(Customer.merged_into_id.is_(None))
    conditions = [Customer.search_name.startswith(lowered, autoescape=True),
                  func.lower(Customer.last_name).startswith(lowered, autoescape=True)]
    identity_values = {lowered, text}
    digits = "".join(ch for ch in text if ch.isdigit() or ch == "+")
    if len(digits) >= 4 and digits.lstrip("+").isdigit():
        if digits.startswith("+"):
            identity_values.add(digits)
        else:  # a national number: try it as international and in the company's own country
            code = phonenumbers.country_code_for_region(get_settings().default_region)
            identity_values.update({"+" + digits, f"+{code}{digits.lstrip('0')}"})
    ids = select(Identity.customer_id).where(
        or_(*(Identity.value.startswith(v, autoescape=True) for v in identity_values))
    ).limit(limit * 5)
    conditions.append(Customer.id.in_(ids))
    if text.startswith("cus_"):
        conditions.append(Customer.id == text)
    stmt = stmt.where(or_(*conditions)).order_by(Customer.search_name).limit(limit)
    return list(session.scalars(stmt))


class Loaded(NamedTuple):
    """A profile read for a bulk send: its columns (``row``) and identity values by kind, oldest first."""

    row: Any
    identities: dict[str, list[str]]


# What bulk sends read of a profile: the policy's time zone and traits, and what templates show.
_LOADED_COLUMNS = (
    "id", "traits", "first_name", "last_name", "email", "phone", "locale", "country", "timezone", "birthday",
    "customer_since", "first_seen_at", "last_seen_at", "event_count", "purchase_count", "last_purchase_at",
    "last_channel")


def load_profiles(session: Session, customer_ids: Sequence[str]) -> dict[str, Loaded]:
    """Many profiles with their identities in two queries per 500 (columns, not ORM objects): read
    once for a campaign chunk, then shared by the policy's decisions and the templates."""
    found: dict[str, Loaded] = {}
    columns = [getattr(Customer, name) for name in _LOADED_COLUMNS]
    for part in chunks(sorted(set(customer_ids)), 500):
        for row in session.execute(select(*columns).where(Customer.id.in_(part))):
            found[row.id] = Loaded(row, {})
        for cid, kind, value in session.execute(select(Identity.customer_id, Identity.kind, Identity.value)
                                                .where(Identity.customer_id.in_(part)).order_by(Identity.id)):
            if cid in found:
                found[cid].identities.setdefault(kind, []).append(value)
    return found


def identities_of(session: Session, customer_id: str) -> list[Identity]:
    return list(
        session.scalars(select(Identity).where(Identity.customer_id == customer_id).order_by(Identity.id))
    )


def timeline(
    session: Session,
    *,
    customer_id: str,
    kinds: Iterable[str] = (),
    channels: Iterable[str] = (),
    departments: Iterable[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Event]:
    """The customer's history, newest first, filtered; page with ``before_id`` (the last id seen)."""
    stmt = select(Event).where(Event.customer_id == customer_id)
    if kinds := list(kinds):
        stmt = stmt.where(Event.kind.in_(kinds))
    if channels := list(channels):
        stmt = stmt.where(Event.channel.in_(channels))
    if departments := list(departments):
        stmt = stmt.where(Event.department.in_(departments))
    if since:
        stmt = stmt.where(Event.occurred_at >= since)
    if until:
        stmt = stmt.where(Event.occurred_at < until)
    if before_id is not None:
        cursor = session.get(Event, before_id)
        if cursor is not None:
            stmt = stmt.where(
                or_(Event.occurred_at < cursor.occurred_at,
                    (Event.occurred_at == cursor.occurred_at) & (Event.id < cursor.id))
            )
    stmt = stmt.order_by(Event.occurred_at.desc(), Event.id.desc()).limit(max(1, min(limit, 500)))
    return list(session.scalars(stmt))


def last_event_at(session: Session, *, customer_id: str, kind: str, channel: str | None = None) -> datetime | None:
    """When the customer's latest entry of ``kind`` (on ``channel``) happened, or None."""
    stmt = select(Event.occurred_at).where(Event.customer_id == customer_id, Event.kind == kind)
    if channel is not None:
        stmt = stmt.where(Event.channel == channel)
    return session.scalar(stmt.order_by(Event.occurred_at.desc()).limit(1))


def timeline_facets(session: Session, *, customer_id: str) -> dict[str, list[str]]:
    """The kinds, channels and departments present on a customer's timeline, to filter it by."""
    facets: dict[str, list[str]] = {}
    for key, column in (("kinds", Event.kind), ("channels", Event.channel), ("departments", Event.department)):
        facets[key] = list(
            session.scalars(
                select(column).where(Event.customer_id == customer_id, column.is_not(None)).distinct().order_by(column)
            )
        )
    return facets


def event_counts(session: Session, *, customer_id: str) -> dict[str, int]:
    """Events per name (tracked) or kind (others), from the rollups."""
    rows = session.execute(
        select(EventRollup.name, func.sum(EventRollup.count))
        .where(EventRollup.customer_id == customer_id)
        .group_by(EventRollup.name)
        .order_by(func.sum(EventRollup.count).desc())
    )
    return {name: int(total) for name, total in rows}


def lifetime_values(session: Session, *, customer_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """Revenue to date per customer and currency, in minor units (cents), largest first."""
    found: dict[str, dict[str, int]] = {}
    for part in chunks(list(customer_ids), 500):
        rows = session.execute(
            select(CustomerRevenue.customer_id, CustomerRevenue.currency, CustomerRevenue.cents)
            .where(CustomerRevenue.customer_id.in_(part), CustomerRevenue.cents != 0)
            .order_by(CustomerRevenue.cents.desc())
        )
        for customer_id, currency, cents in rows:
            found.setdefault(customer_id, {})[currency] = int(cents)
    return found


def channel_summary(session: Session, *, customer_id: str) -> list[dict[str, Any]]:
    """Per channel: how many entries, the last one and when."""
    rows = session.execute(
        select(Event.channel, func.count(Event.id), func.max(Event.occurred_at))
        .where(Event.customer_id == customer_id, Event.channel.is_not(None))
        .group_by(Event.channel)
        .order_by(func.count(Event.id).desc())
    )
    return [
        {"channel": channel, "count": count, "last_at": computed._aware(last)}
        for channel, count, last in rows
    ]


def merge_log(session: Session, *, customer_id: str) -> list[CustomerMerge]:
    return list(
        session.scalars(
            select(CustomerMerge)
            .where(or_(CustomerMerge.survivor_id == customer_id, CustomerMerge.merged_id == customer_id))
            .order_by(CustomerMerge.created_at.desc())
        )
    )


def merged_into(session: Session, customer_ids: Iterable[str]) -> dict[str, list[str]]:
    """For each profile, itself and every profile merged into it, directly or through others (whose
    timeline it now holds)."""
    return merges.merged_into(session, customer_ids)


def current_profiles(session: Session, customer_ids: Iterable[str]) -> dict[str, str]:
    """For each profile id, the profile that now holds it: itself, or the one it was merged into
    (following merges of merges)."""
    found = {cid: cid for cid in customer_ids}
    pending = set(found)
    for _ in range(16):  # merges of merges are short chains
        if not pending:
            break
        moved: dict[str, str] = {}
        for part in chunks(sorted({found[c] for c in pending}), 500):
            moved.update((merged_id, into) for merged_id, into in session.execute(
                select(Customer.id, Customer.merged_into_id).where(
                    Customer.id.in_(list(part)), Customer.merged_into_id.is_not(None))))
        pending = {c for c in pending if found[c] in moved}
        for c in pending:
            found[c] = moved[found[c]]
    return found


def merge(
    session: Session, *, survivor_id: str, merged_id: str, actor: str, force: bool = False,
    exclusive_kinds: Iterable[str] = ("user_id",), explanation: str = "merged by a person",
) -> CustomerMerge:
    """Merge two profiles on a person's decision (``force`` allows different user ids)."""
    return merges.merge_customers(
        session, survivor_id=survivor_id, merged_id=merged_id, reason="manual", explanation=explanation,
        actor=actor, exclusive_kinds=exclusive_kinds, force=force,
    )


def unmerge(session: Session, *, customer_id: str, actor: str, merge_id: str | None = None) -> CustomerMerge:
    """Undo the merge that folded ``customer_id`` (the merged profile) into another one.

    Given a survivor and a ``merge_id``, undoes that merge instead.
    """
    if merge_id is None:
        merge_id = session.scalar(
            select(CustomerMerge.id)
            .where(CustomerMerge.merged_id == customer_id, CustomerMerge.status == "merged")
            .order_by(CustomerMerge.created_at.desc())
        )
        if merge_id is None:
            raise CustomerNotFound(
                f"customer {customer_id} was not merged into another profile; "
                "give the merge_id to undo a merge into it",
                code="merge_not_found",
            )
    return merges.unmerge(session, merge_id=merge_id, actor=actor)


# What reacts to new timeline entries in the transaction that stores them (campaigns attribute
# conversions and unsubscribes at once). Every stored batch passes through each of them, so a
# reaction must cost next to nothing for the rows it ignores, and be idempotent.
EventReaction = Callable[[Session, Sequence[dict[str, Any]]], None]
_reactions: list[EventReaction] = []
# Modules whose import registers their reaction: imported before the first batch is stored, so
# every process that stores events (server, worker, imports, scripts) has them.
BUILT_IN_REACTIONS = ("trato.campaigns.attribution",)
_built_in_loaded = False


def react_to_events(reaction: EventReaction) -> EventReaction:
    """Call ``reaction(session, rows)`` with each batch of timeline entries stored from now on (by
    the tracking API and imports, :func:`record_event` and :func:`record_events`), in the storing
    transaction. A row stored at the same moment by another process may be seen twice."""
    if reaction not in _reactions:
        _reactions.append(reaction)
    return reaction


def _stored(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    global _built_in_loaded
    if not _built_in_loaded:
        for module in BUILT_IN_REACTIONS:
            importlib.import_module(module)
        _built_in_loaded = True
    for reaction in _reactions:
        reaction(session, rows)


def record_event(
    session: Session,
    *,
    customer_id: str,
    kind: str,
    name: str | None = None,
    channel: str | None = None,
    department: str | None = None,
    source_id: str = "trato",
    message_id: str | None = None,
    properties: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> Event | None:
    """Put an entry on a customer's timeline (messages, cases, consent changes, notes).

    Idempotent on (source, message_id): a repeat returns None and changes nothing.
    """
    customer = get_customer(session, customer_id)
    at = occurred_at or utcnow()
    row = {
        "customer_id": customer.id, "origin_customer_id": customer.id, "source_id": source_id,
        "message_id": message_id or new_id("evt"), "kind": kind, "name": name, "channel": channel,
        "department": department, "occurred_at": at, "received_at": utcnow(),
        "properties": properties or {}, "context": {}, "revenue_cents": None, "currency": None,
    }
    stmt = insert_for(session)(Event).values(**row).on_conflict_do_nothing(
        index_elements=["source_id", "message_id"]
    ).returning(Event.id)
    event_id = session.execute(stmt).scalar()
    if event_id is None:
        return None
    computed.apply_event_totals(session, [{
        "customer_id": customer.id, "n": 1, "first": at, "last": at, "last_channel": channel, "channel_at": at,
        "purchases": 0, "last_purchase": None,
    }])
    computed.add_rollups(session, {(customer.id, computed.rollup_name(kind, name), at.date()): 1})
    _stored(session, [row])
    return session.get(Event, event_id)


def create_customer(
    session: Session, *, traits: dict[str, Any], identities: list[tuple[str, str]], actor: str
) -> Customer:
    """A new profile from the API or an import; its identities must not belong to anyone yet."""
    check_traits(traits)
    region = traits.get("country") if isinstance(traits.get("country"), str) else None
    keys = [normalize_identity(k, v, region=region) for k, v in identities]
    traits = dict(traits)
    for kind in ("email", "phone"):  # a single address given as an identity is also the contact trait
        values = [v for k, v in keys if k == kind]
        if len(values) == 1 and kind not in traits:
            traits[kind] = values[0]
    for kind, value in keys:
        owner = session.scalar(select(Identity.customer_id).where(Identity.kind == kind, Identity.value == value))
        if owner:
            raise IdentityTaken(
                f"{kind} {value} already belongs to customer {owner}",
                details={"kind": kind, "value": value, "customer_id": owner},
            )
    resolver = Resolver(session, exclusive_kinds=["user_id"], actor=actor)
    result = resolver.resolve(Observation(keys, at=utcnow(), linked_via="api", traits=traits, source_id="api"))
    resolver.flush()
    audit.record(session, actor=actor, action="customer.create", object_type="customer", object_id=result.customer_id)
    return get_customer(session, result.customer_id)


def set_traits(session: Session, *, customer_id: str, traits: dict[str, Any], actor: str) -> Customer:
    """Set traits (newest wins, as on ingest); ``None`` removes one."""
    check_traits({k: v for k, v in traits.items() if v is not None})
    customer = get_customer(session, customer_id)
    now = iso(utcnow())
    merged, times = dict(customer.traits or {}), dict(customer.trait_times or {})
    for key, value in traits.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
        times[key] = now
    customer.traits, customer.trait_times = merged, times
    merges.apply_typed(customer)
    audit.record(session, actor=actor, action="customer.traits", object_type="customer",
                 object_id=customer.id, traits=sorted(traits))
    return customer


def add_identity(session: Session, *, customer_id: str, kind: str, value: str, actor: str) -> Identity:
    """Link an identity to a profile by hand; one that belongs to someone else is refused."""
    customer = get_customer(session, customer_id)
    kind, value = normalize_identity(kind, value, region=customer.country)
    existing = session.scalar(select(Identity).where(Identity.kind == kind, Identity.value == value))
    if existing is not None:
        if existing.customer_id == customer.id:
            return existing
        raise IdentityTaken(
            f"{kind} {value} already belongs to customer {existing.customer_id}; merge the profiles instead",
            details={"customer_id": existing.customer_id},
        )
    identity = Identity(
        customer_id=customer.id, origin_customer_id=customer.id, kind=kind, value=value,
        linked_via="api", source_id="api", created_at=utcnow(),
    )
    session.add(identity)
    session.flush()
    audit.record(session, actor=actor, action="customer.identity.add", object_type="customer",
                 object_id=customer.id, identity=f"{kind}:{value}")
    return identity


def record_events(session: Session, *, rows: list[dict[str, Any]]) -> int:
    """Many timeline entries at once, each exactly as :func:`record_event` would store it
    (``rows`` are full event rows for profiles already resolved): a (source, message_id) already
    stored or repeated is skipped, and counts, last-seen and rollups follow. Returns how many went in."""
    seen: set[tuple[str, str]] = set()
    by_source: dict[str, list[str]] = {}
    for r in rows:
        by_source.setdefault(r["source_id"], []).append(r["message_id"])
    for source_id, message_ids in by_source.items():  # (source, message id) is the unique index: use all of it
        for part in chunks(message_ids, 500):
            seen.update((source, message) for source, message in session.execute(
                select(Event.source_id, Event.message_id).where(Event.source_id == source_id,
                                                                Event.message_id.in_(part))))
    fresh = []
    for row in rows:
        if (row["source_id"], row["message_id"]) not in seen:
            seen.add((row["source_id"], row["message_id"]))
            fresh.append(row)
    if not fresh:
        return 0
    writes.insert_events(session.connection(), fresh)
    computed.apply_event_totals(session, [{
        "customer_id": r["customer_id"], "n": 1, "first": r["occurred_at"], "last": r["occurred_at"],
        "last_channel": r["channel"], "channel_at": r["occurred_at"], "purchases": 0, "last_purchase": None,
    } for r in fresh])
    rollups: dict[tuple[str, str, Any], int] = {}
    for r in fresh:
        key = (r["customer_id"], computed.rollup_name(r["kind"], r["name"]), r["occurred_at"].date())
        rollups[key] = rollups.get(key, 0) + 1
    computed.add_rollups(session, rollups)
    _stored(session, fresh)
    return len(fresh)


def insert_events(session: Session, rows: list[dict[str, Any]]) -> int:
    """Store timeline rows exactly once per (source, messageId); returns how many were new."""
    inserted = writes.insert_events(session.connection(), rows)
    if inserted:
        _stored(session, rows)
    return inserted


def rebuild_computed(session: Session, *, customer_ids: Iterable[str]) -> None:
    computed.rebuild(session, customer_ids)


def erase_personal_data(session: Session, *, customer_id: str) -> tuple[list[str], list[tuple[str, str]]]:
    """A privacy request's erasure in the customer memory (profile, merged profiles, identities,
    timeline payloads, merge snapshots); counts stay. Returns the profile ids (the customer's and
    those merged into it) and the (kind, value) identities the person had."""
    customer = get_customer(session, customer_id)
    return erasure.erase(session, customer.id)



def owner_of(session: Session, *, kind: str, value: str) -> str | None:
    """The id of the profile an identity is linked to, or None (no exception: a question, not a look-up)."""
    return session.scalar(select(Identity.customer_id).where(Identity.kind == kind, Identity.value == value))


def remove_identity(session: Session, *, kind: str, value: str, actor: str) -> str | None:
    """Unlink an identity from whoever has it (e.g. a push registration the device dropped);
    returns the profile it was linked to, or None when nobody had it."""
    identity = session.scalar(select(Identity).where(Identity.kind == kind, Identity.value == value))
    if identity is None:
        return None
    owner = identity.customer_id
    session.delete(identity)
    session.flush()
    audit.record(session, actor=actor, action="customer.identity.remove", object_type="customer", object_id=owner,
                 identity=f"{kind}:{value}")
    return owner


def profiles_of(session: Session, customer_id: str) -> list[str]:
    """The profile and every profile merged into it, directly or through others."""
    return erasure.profiles_of(session, customer_id)
