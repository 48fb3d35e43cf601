"""Erasing a person (a privacy request): their personal data leaves the customer memory while
anonymous counts (events by kind and day, totals, revenue) stay.

The profile and every profile merged into it lose their traits and typed fields, their
identities are deleted, timeline entries keep kind, name, channel and time but lose their
payloads, and the merge log keeps that merges happened but not the values they moved.
"""

from __future__ import annotations

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from trato.customers import merges
from trato.customers.models import Customer, CustomerMerge, Event, Identity
from trato.customers.traits import TYPED_COLUMNS


def profiles_of(session: Session, customer_id: str) -> list[str]:
    """The profile and every profile merged into it, directly or through others."""
    return merges.merged_into(session, [customer_id])[customer_id]


def erase(session: Session, customer_id: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Remove the personal data of a customer; returns the profile ids erased and the
    (kind, value) identities they had (with the e-mail and phone traits), so that the caller can
    block the addresses from coming back."""
    ids = profiles_of(session, customer_id)
    addresses: set[tuple[str, str]] = {(kind, value) for kind, value in session.execute(
        select(Identity.kind, Identity.value).where(
            or_(Identity.customer_id.in_(ids), Identity.origin_customer_id.in_(ids))))}
    for customer in session.scalars(select(Customer).where(Customer.id.in_(ids))):
        for kind in ("email", "phone"):
            value = getattr(customer, kind)
            if value:
                addresses.add((kind, value))
        customer.traits, customer.trait_times, customer.search_name = {}, {}, None
        for column in TYPED_COLUMNS:
            setattr(customer, column, None)
    session.execute(delete(Identity).where(or_(Identity.customer_id.in_(ids), Identity.origin_customer_id.in_(ids))))
    session.execute(update(Event).where(or_(Event.customer_id.in_(ids), Event.origin_customer_id.in_(ids)))
                    .values(properties={}, context={}))
    session.execute(update(CustomerMerge).where(
        or_(CustomerMerge.survivor_id.in_(ids), CustomerMerge.merged_id.in_(ids))).values(
        moved={}, survivor_before={}, merged_before={}, trigger_identity=None,
        explanation="the data of this merge was erased on a privacy request"))
    session.flush()
    return ids, sorted(addresses)
