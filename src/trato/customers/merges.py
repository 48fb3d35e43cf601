"""Merging two profiles into one person, and undoing a merge that was wrong.

A merge moves every identity and event of the merged profile to the survivor and keeps the
newer value of each conflicting trait (the older one is kept in the merge record). The merged
profile stays, pointing at the survivor. Identities and events remember the profile they first
belonged to (``origin_customer_id``), so an unmerge sends back exactly what came from the
merged side, including profiles that had been merged into it before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trato.core import audit
from trato.core.clock import iso, utcnow
from trato.core.db import chunks
from trato.core.ids import new_id
from trato.customers import computed
from trato.customers.errors import CustomerNotFound, MergeNotUndoable, MergeRefused
from trato.customers.models import Customer, CustomerMerge, Event, Identity
from trato.customers.traits import TYPED_COLUMNS, search_name, typed_columns

SNAPSHOT_COLUMNS = ("traits", "trait_times", *TYPED_COLUMNS, "search_name")


def exclusive_identities(session: Session, customer_id: str, kinds: Iterable[str]) -> dict[str, str]:
    rows = session.execute(
        select(Identity.kind, Identity.value).where(
            Identity.customer_id == customer_id, Identity.kind.in_(list(kinds))
        )
    )
    return {kind: value for kind, value in rows}


def conflicting_kinds(a: dict[str, str], b: dict[str, str]) -> list[str]:
    """The exclusive kinds on which two profiles hold different values (so they must not merge)."""
    return sorted(kind for kind in a.keys() & b.keys() if a[kind] != b[kind])


def choose_survivor(a: str, b: str, exclusive: dict[str, dict[str, str]]) -> tuple[str, str]:
    """(survivor, merged): a known person (one with an exclusive id) survives, else the older profile."""
    a_known, b_known = bool(exclusive.get(a)), bool(exclusive.get(b))
    if a_known != b_known:
        return (a, b) if a_known else (b, a)
    return (a, b) if a <= b else (b, a)  # ids sort by creation time


def _snapshot(customer: Customer) -> dict[str, Any]:
    snap: dict[str, Any] = {}
    for column in SNAPSHOT_COLUMNS:
        value = getattr(customer, column)
        snap[column] = value.isoformat() if hasattr(value, "isoformat") else value
    return snap


def _restore(customer: Customer, snap: dict[str, Any]) -> None:
    customer.traits = dict(snap.get("traits") or {})
    customer.trait_times = dict(snap.get("trait_times") or {})
    apply_typed(customer)


def apply_typed(customer: Customer) -> None:
    """Refresh the typed columns and search name from the traits."""
    columns = typed_columns(customer.traits or {})
    for column in TYPED_COLUMNS:
        setattr(customer, column, columns.get(column))
    customer.search_name = search_name(customer.first_name, customer.last_name)


def combine_traits(
    survivor: tuple[dict[str, Any], dict[str, str]], merged: tuple[dict[str, Any], dict[str, str]]
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Newer value wins per trait; returns (traits, times, {trait: {kept, discarded}})."""
    traits, times = dict(survivor[0]), dict(survivor[1])
    overridden: dict[str, Any] = {}
    for key, value in merged[0].items():
        theirs = merged[1].get(key, "")
        if key not in traits:
            traits[key], times[key] = value, theirs
        elif traits[key] == value:
            # The same value asserted later takes the later time, as it would on one profile.
            times[key] = max(times.get(key, ""), theirs)
        else:
            if theirs > times.get(key, ""):  # fixed-width ISO text (clock.iso) sorts by time
                overridden[key] = {"kept": value, "discarded": traits[key]}
                traits[key], times[key] = value, theirs
            else:
                overridden[key] = {"kept": traits[key], "discarded": value}
    return traits, times, overridden


def merge_customers(
    session: Session,
    *,
    survivor_id: str,
    merged_id: str,
    reason: str,
    explanation: str,
    actor: str,
    exclusive_kinds: Iterable[str] = ("user_id",),
    trigger_identity: str | None = None,
    source_id: str | None = None,
    message_id: str | None = None,
    force: bool = False,
) -> CustomerMerge:
    """Merge ``merged_id`` into ``survivor_id``; refuses profiles with different exclusive ids
    (two different user ids) unless ``force`` — a person's explicit decision."""
    if survivor_id == merged_id:
        raise MergeRefused("a profile cannot be merged into itself")
    survivor = session.get(Customer, survivor_id, with_for_update=True, populate_existing=True)
    merged = session.get(Customer, merged_id, with_for_update=True, populate_existing=True)
    for cid, customer in ((survivor_id, survivor), (merged_id, merged)):
        if customer is None:
            raise CustomerNotFound(f"customer {cid} does not exist", details={"customer_id": cid})
        if customer.merged_into_id:
            raise MergeRefused(
                f"customer {cid} was already merged into {customer.merged_into_id}",
                details={"customer_id": cid, "merged_into": customer.merged_into_id},
            )
    assert survivor is not None and merged is not None
    kinds = list(exclusive_kinds)
    conflicts = conflicting_kinds(
        exclusive_identities(session, survivor_id, kinds), exclusive_identities(session, merged_id, kinds)
    )
    if conflicts and not force:
        raise MergeRefused(
            f"customers {survivor_id} and {merged_id} have different {', '.join(conflicts)}; "
            "they are never merged automatically (a person may force it)",
            details={"conflicting_kinds": conflicts},
        )

    record = CustomerMerge(
        id=new_id("mrg"),
        status="merged",
        survivor_id=survivor_id,
        merged_id=merged_id,
        reason=reason,
        explanation=explanation[:500],
        trigger_identity=trigger_identity,
        source_id=source_id,
        message_id=message_id,
        actor=actor,
        survivor_before=_snapshot(survivor),
        merged_before=_snapshot(merged),
        created_at=utcnow(),
    )
    traits, times, overridden = combine_traits(
        (survivor.traits or {}, survivor.trait_times or {}), (merged.traits or {}, merged.trait_times or {})
    )
    survivor.traits, survivor.trait_times = traits, times
    apply_typed(survivor)

    moved_identities = [
        f"{kind}:{value}"
        for kind, value in session.execute(
            select(Identity.kind, Identity.value).where(Identity.customer_id == merged_id)
        )
    ]
    session.execute(
        update(Identity).where(Identity.customer_id == merged_id).values(customer_id=survivor_id)
        .execution_options(synchronize_session=False)
    )
    moved_events = session.execute(
        update(Event).where(Event.customer_id == merged_id).values(customer_id=survivor_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    merged.merged_into_id = survivor_id
    merged.merged_at = record.created_at
    record.moved = {"identities": moved_identities, "events": moved_events, "traits": overridden}
    session.add(record)
    session.flush()
    computed.fold_merged(session, survivor_id=survivor_id, merged_id=merged_id)
    audit.record(
        session, actor=actor, action="customer.merge", object_type="customer", object_id=survivor_id,
        merged_id=merged_id, merge_id=record.id, reason=reason,
    )
    return record


def record_refusal(
    session: Session,
    *,
    survivor_id: str,
    merged_id: str,
    conflicts: list[str],
    trigger_identity: str,
    actor: str,
    source_id: str | None = None,
    message_id: str | None = None,
) -> None:
    """Log, once per pair and identity, that an event linked two people who must stay apart."""
    exists = session.scalar(
        select(func.count(CustomerMerge.id)).where(
            CustomerMerge.status == "refused",
            CustomerMerge.survivor_id == survivor_id,
            CustomerMerge.merged_id == merged_id,
            CustomerMerge.trigger_identity == trigger_identity,
        )
    )
    if exists:
        return
    session.add(
        CustomerMerge(
            id=new_id("mrg"), status="refused", survivor_id=survivor_id, merged_id=merged_id,
            reason="exclusive_conflict",
            explanation=(
                f"{trigger_identity} belongs to {merged_id}, which has a different "
                f"{', '.join(conflicts)}; not merged"
            )[:500],
            trigger_identity=trigger_identity, source_id=source_id, message_id=message_id,
            actor=actor, created_at=utcnow(),
        )
    )


def merged_into(session: Session, customer_ids: Iterable[str]) -> dict[str, list[str]]:
    """For each profile, itself first and then every profile merged into it, directly or through
    others, level by level. Few queries for many profiles: one per level of merges."""
    found = {cid: [cid] for cid in customer_ids}
    owner = {cid: cid for cid in found}
    frontier = list(found)
    while frontier:
        merged: list[str] = []
        for part in chunks(frontier, 500):
            for merged_id, into in session.execute(select(Customer.id, Customer.merged_into_id).where(
                    Customer.merged_into_id.in_(list(part)))):
                if merged_id not in owner:
                    owner[merged_id] = owner[into]
                    found[owner[into]].append(merged_id)
                    merged.append(merged_id)
        frontier = merged
    return found


def merged_subtree(session: Session, customer_id: str) -> set[str]:
    """The profile and every profile merged into it, directly or through others."""
    return set(merged_into(session, [customer_id])[customer_id])


def unmerge(session: Session, *, merge_id: str, actor: str) -> CustomerMerge:
    """Undo a merge: the merged profile comes back with its identities, events and traits."""
    record = session.get(CustomerMerge, merge_id, with_for_update=True)
    if record is None:
        raise CustomerNotFound(f"merge {merge_id} does not exist", code="merge_not_found")
    if record.status != "merged":
        raise MergeNotUndoable(f"merge {merge_id} is {record.status}, not an active merge")
    survivor = session.get(Customer, record.survivor_id, with_for_update=True, populate_existing=True)
    merged = session.get(Customer, record.merged_id, with_for_update=True, populate_existing=True)
    assert survivor is not None and merged is not None
    if survivor.merged_into_id:
        raise MergeNotUndoable(
            f"{survivor.id} was itself merged into {survivor.merged_into_id} later; undo that merge first",
            details={"blocking_customer": survivor.merged_into_id},
        )
    subtree = merged_subtree(session, merged.id)
    session.execute(
        update(Identity)
        .where(Identity.customer_id == survivor.id, Identity.origin_customer_id.in_(subtree))
        .values(customer_id=merged.id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Event)
        .where(Event.customer_id == survivor.id, Event.origin_customer_id.in_(subtree))
        .values(customer_id=merged.id)
        .execution_options(synchronize_session=False)
    )
    # The survivor keeps trait changes made after the merge; the rest goes back as it was.
    since = iso(record.created_at)
    later = {k: v for k, v in (survivor.trait_times or {}).items() if v > since}
    current = dict(survivor.traits or {})
    _restore(survivor, record.survivor_before)
    for key, when in later.items():
        survivor.traits = {**survivor.traits, key: current.get(key)}
        survivor.trait_times = {**survivor.trait_times, key: when}
    apply_typed(survivor)
    _restore(merged, record.merged_before)
    merged.merged_into_id = None
    merged.merged_at = None
    record.status = "undone"
    record.undone_at = utcnow()
    record.undone_by = actor
    session.flush()
    computed.rebuild(session, [survivor.id, merged.id])
    audit.record(
        session, actor=actor, action="customer.unmerge", object_type="customer", object_id=survivor.id,
        merged_id=merged.id, merge_id=record.id,
    )
    return record
