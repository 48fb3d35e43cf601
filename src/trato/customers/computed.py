"""Computed traits and rollups: kept up to date on ingest, rebuilt from events after a merge."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, cast, delete, func, select, update
from sqlalchemy.orm import Session

from trato.core.clock import as_utc, parse_timestamp
from trato.customers import writes
from trato.customers.models import Customer, CustomerRevenue, Event, EventRollup

PURCHASE_KIND = "purchase"


def rollup_name(kind: str, name: str | None) -> str:
    """The key an event is counted under: the event name for tracked events, else its kind."""
    if kind in ("track", PURCHASE_KIND) and name:
        return name[:200]
    return f"{kind}:{name}"[:200] if name else kind


def utc_day(session: Session, column: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return func.date(column)
    return cast(func.timezone("UTC", column), Date)


def add_rollups(session: Session, counts: dict[tuple[str, str, date], int]) -> None:
    writes.add_rollups(session.connection(), counts)


def add_revenue(session: Session, amounts: dict[tuple[str, str], int]) -> None:
    writes.add_revenue(session.connection(), amounts)


def apply_event_totals(session: Session, totals: Iterable[dict[str, Any]]) -> None:
    """Fold per-customer totals into the computed traits (see :func:`writes.fold_totals`)."""
    writes.fold_totals(session.connection(), list(totals))


def fold_merged(session: Session, *, survivor_id: str, merged_id: str) -> None:
    """After a merge: add the merged profile's computed traits and rollups to the survivor's.

    Both were exact before the merge, so combining them is exact too, and far cheaper than
    rebuilding from every event of a long history.
    """
    c = Customer.__table__.c
    merged = session.execute(
        select(c.event_count, c.first_seen_at, c.last_seen_at, c.last_channel, c.purchase_count,
               c.last_purchase_at).where(c.id == merged_id)
    ).one()
    if merged.event_count:  # revenue only comes with events
        writes.fold_totals(session.connection(), [{
            "customer_id": survivor_id, "n": merged.event_count, "first": merged.first_seen_at,
            "last": merged.last_seen_at, "last_channel": merged.last_channel, "channel_at": merged.last_seen_at,
            "purchases": merged.purchase_count,
            "last_purchase": merged.last_purchase_at,
        }])
        writes.move_rollups(session.connection(), from_id=merged_id, to_id=survivor_id)
    session.execute(
        update(Customer).where(Customer.id == merged_id).values(
            event_count=0, first_seen_at=None, last_seen_at=None, last_channel=None, purchase_count=0,
            last_purchase_at=None,
        ).execution_options(synchronize_session=False)
    )


def rebuild(session: Session, customer_ids: Iterable[str]) -> None:
    """Recompute computed traits and rollups of these customers from their events."""
    for customer_id in customer_ids:
        totals = session.execute(
            select(
                func.count(Event.id),
                func.min(Event.occurred_at),
                func.max(Event.occurred_at),
            ).where(Event.customer_id == customer_id)
        ).one()
        purchases = session.execute(
            select(func.count(Event.id), func.max(Event.occurred_at)).where(
                Event.customer_id == customer_id, Event.kind == PURCHASE_KIND
            )
        ).one()
        last_channel = session.scalar(
            select(Event.channel)
            .where(Event.customer_id == customer_id, Event.channel.is_not(None))
            .order_by(Event.occurred_at.desc(), Event.id.desc())
            .limit(1)
        )
        session.execute(
            update(Customer)
            .where(Customer.id == customer_id)
            .values(
                event_count=totals[0],
                first_seen_at=_aware(totals[1]),
                last_seen_at=_aware(totals[2]),
                purchase_count=purchases[0],
                last_purchase_at=_aware(purchases[1]),
                last_channel=last_channel,
            )
            .execution_options(synchronize_session=False)
        )
        session.execute(delete(EventRollup).where(EventRollup.customer_id == customer_id))
        session.execute(delete(CustomerRevenue).where(CustomerRevenue.customer_id == customer_id))
        writes.add_revenue(session.connection(), {
            (customer_id, currency): int(cents)
            for currency, cents in session.execute(
                select(Event.currency, func.sum(Event.revenue_cents))
                .where(Event.customer_id == customer_id, Event.revenue_cents.is_not(None))
                .group_by(Event.currency)
            )
            if currency
        })
        day = utc_day(session, Event.occurred_at)
        counts: dict[tuple[str, str, date], int] = {}
        for kind, name, event_day, count in session.execute(
            select(Event.kind, Event.name, day, func.count())
            .where(Event.customer_id == customer_id)
            .group_by(Event.kind, Event.name, day)
        ):
            if isinstance(event_day, str):
                event_day = date.fromisoformat(event_day)
            key = (customer_id, rollup_name(kind, name), event_day)
            counts[key] = counts.get(key, 0) + count
        add_rollups(session, counts)


def _aware(value: datetime | str | None) -> datetime | None:
    # Aggregates bypass the column type on SQLite and come back as text.
    if value is None:
        return None
    if isinstance(value, str):
        return parse_timestamp(value)
    return as_utc(value)
