"""Ingestion: sources and their write keys, and the batched write path for tracked events.

:func:`ingest` takes many raw Segment calls at once and writes them with a handful of
statements: identities are looked up per kind for the whole batch, new profiles and identities
inserted together, trait changes coalesced per customer, events inserted in one executemany
that skips messageIds already stored (the unique constraint decides), and the computed traits
and rollups of every customer touched updated in one statement each.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trato.core import audit
from trato.core.clock import utcnow
from trato.core.db import chunks
from trato.core.errors import TratoError
from trato.core.ids import new_id
from trato.core.secrets import display_prefix, new_token, token_digest
from trato.core.settings import get_settings
from trato.customers import computed, writes
from trato.customers import service as customers
from trato.ingest import segment
from trato.ingest.errors import InvalidEvent, InvalidWriteKey, SourceExists
from trato.ingest.models import Source


@dataclass
class IngestResult:
    accepted: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    customers: set[str] = field(default_factory=set)

    def as_response(self) -> dict[str, Any]:
        body: dict[str, Any] = {"success": not self.rejected, "accepted": self.accepted}
        if self.rejected:
            body["rejected"] = self.rejected
        return body


# -- sources ----------------------------------------------------------------------------------


def create_source(
    session: Session, *, name: str, actor: str, default_channel: str | None = None,
    default_department: str | None = None,
) -> tuple[Source, str]:
    """A new source and its write key; the key is returned once and stored only hashed."""
    name = name.strip()
    if not name or len(name) > 120:
        raise TratoError("a source needs a name of 1 to 120 characters", code="invalid_source_name", details=None)
    if session.scalar(select(Source.id).where(Source.name == name)):
        raise SourceExists(f"a source named {name!r} exists already", details={"name": name})
    key = new_token("wk")
    source = Source(
        id=new_id("src"), name=name, write_key_digest=token_digest(key), write_key_prefix=display_prefix(key),
        default_channel=default_channel, default_department=default_department, created_at=utcnow(),
    )
    session.add(source)
    audit.record(session, actor=actor, action="source.create", object_type="source", object_id=source.id, name=name)
    return source, key


def list_sources(session: Session) -> list[Source]:
    return list(session.scalars(select(Source).order_by(Source.name)))


_source_cache: dict[str, tuple[float, Source]] = {}
_cache_lock = threading.Lock()
SOURCE_CACHE_SECONDS = 30.0


def cached_source(write_key: str) -> Source | None:
    """The source of a write key if it was looked up in the last few seconds (no database)."""
    with _cache_lock:
        hit = _source_cache.get(token_digest(write_key))
    if hit and time.monotonic() - hit[0] < SOURCE_CACHE_SECONDS:
        return hit[1]
    return None


def authenticate(session: Session, write_key: str) -> Source:
    """The enabled source a write key belongs to (cached briefly: it is asked on every call)."""
    cached = cached_source(write_key)
    if cached is not None:
        return cached
    digest = token_digest(write_key)
    now = time.monotonic()
    source = session.scalar(select(Source).where(Source.write_key_digest == digest))
    if source is None or source.disabled_at is not None:
        raise InvalidWriteKey("the write key is not valid for any enabled source")
    session.expunge(source)
    with _cache_lock:
        _source_cache[digest] = (now, source)
    return source


def forget_cached_sources() -> None:
    with _cache_lock:
        _source_cache.clear()


# -- the write path ---------------------------------------------------------------------------


def parse_calls(
    calls: list[Any], *, call_type: str | None, received_at: datetime, sent_at: Any = None,
    batch_context: dict[str, Any] | None = None,
) -> tuple[list[tuple[int, segment.ParsedEvent]], list[dict[str, Any]]]:
    """Parse raw calls; returns (index, event) for the good ones and a rejection for each bad one."""
    settings = get_settings()
    good: list[tuple[int, segment.ParsedEvent]] = []
    rejected: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        try:
            good.append((index, segment.parse(
                call, call_type=call_type, received_at=received_at, sent_at=sent_at,
                batch_context=batch_context, max_bytes=settings.ingest_max_event_bytes,
                region=settings.default_region, currency=settings.default_currency,
            )))
        except TratoError as exc:
            rejected.append(segment.rejection(index, call, exc))
    return good, rejected


def parse_request(
    body: dict[str, Any], *, call_type: str | None, received_at: datetime
) -> tuple[list[Any], list[tuple[int, segment.ParsedEvent]], list[dict[str, Any]]]:
    """A tracking request's body (one call, or ``call_type`` None: a batch) to (calls, good, rejected).

    The tracking API checks requests with it before they enter the inbox, and the folder reads
    them back with it, so both see the same events.
    """
    if call_type is not None:
        calls = [body]
        good, rejected = parse_calls(calls, call_type=call_type, received_at=received_at)
        return calls, good, rejected
    calls = body.get("batch")
    if not isinstance(calls, list):
        raise InvalidEvent("a batch needs a 'batch' list of calls", details={"field": "batch"})
    context = body.get("context") if isinstance(body.get("context"), dict) else None
    good, rejected = parse_calls(
        calls, call_type=None, received_at=received_at, sent_at=body.get("sentAt"), batch_context=context
    )
    return calls, good, rejected


def ingest(
    session: Session,
    *,
    source: Source,
    events: list[tuple[int, segment.ParsedEvent]],
    received_at: datetime | None = None,
    linked_via: str | None = None,
) -> IngestResult:
    """Store parsed events exactly once and fold them into the customer memory."""
    received_at = received_at or utcnow()
    result = IngestResult()
    seen: set[str] = set()
    unique: list[segment.ParsedEvent] = []
    for _, event in events:
        if event.message_id in seen:
            result.duplicates += 1
            continue
        seen.add(event.message_id)
        unique.append(event)
    result.accepted = len(events)
    # The unique (source, messageId) constraint is what guarantees exactly-once; asking first
    # spares repeats the identity work, so a redelivered call changes nothing at all.
    connection = session.connection()
    known = _stored_message_ids(connection, source.id, [event.message_id for event in unique])
    if known:
        result.duplicates += sum(1 for event in unique if event.message_id in known)
        unique = [event for event in unique if event.message_id not in known]
    if not unique:
        return result

    resolver = customers.Resolver(
        session, exclusive_kinds=get_settings().exclusive_identity_kinds, actor=f"source:{source.name}"[:120]
    )
    resolver.prefetch([key for event in unique for key in event.identities])
    rows: list[dict[str, Any]] = []
    for event in unique:
        resolution = resolver.resolve(customers.Observation(
            event.identities, at=event.occurred_at, linked_via=linked_via or event.type, traits=event.traits,
            source_id=source.id, message_id=event.message_id,
            previous=resolver.alias_key(event.previous_id) if event.previous_id else None,
        ))
        rows.append({
            "customer_id": resolution.customer_id, "origin_customer_id": resolution.origin_customer_id,
            "source_id": source.id, "message_id": event.message_id, "kind": event.kind, "name": event.name,
            "channel": event.channel or source.default_channel,
            "department": event.department or source.default_department,
            "occurred_at": event.occurred_at, "received_at": received_at,
            "properties": event.properties, "context": event.context, "revenue_cents": event.revenue_cents,
            "currency": event.currency,
        })
    resolver.flush()
    # Merges during the batch may have moved profiles that earlier rows point at.
    if resolver.merged_into:
        for row in rows:
            row["customer_id"] = resolver.survivor_of(row["customer_id"])

    fresh = rows
    if fresh:
        inserted = customers.insert_events(session, fresh)
        if inserted != len(fresh):
            # Another process stored some of them between the look-up and the insert (PostgreSQL
            # with several writers): keep only what is ours, by the same look-up, now decisive.
            raced = _stored_message_ids(connection, source.id, [r["message_id"] for r in fresh], received_at)
            fresh = [row for row in fresh if row["message_id"] not in raced]
    result.stored = len(fresh)
    result.duplicates += len(rows) - result.stored
    _fold_into_profiles(session, fresh)
    result.customers = {row["customer_id"] for row in rows}
    return result


_EVENTS = customers.Event.__table__


def _stored_message_ids(
    connection: Any, source_id: str, message_ids: list[str], not_received_at: datetime | None = None
) -> set[str]:
    """Which of these messageIds this source has stored already (by other requests)."""
    if not_received_at is None:
        rows = writes.select_by_key(
            connection, table="events", columns="message_id", first=("source_id", source_id),
            second="message_id", values=message_ids,
        )
        return {row[0] for row in rows}
    found: set[str] = set()
    for part in chunks(message_ids, 500):
        found.update(connection.execute(
            select(_EVENTS.c.message_id).where(
                _EVENTS.c.source_id == source_id, _EVENTS.c.message_id.in_(part),
                _EVENTS.c.received_at != not_received_at,
            )
        ).scalars())
    return found


def _fold_into_profiles(session: Session, rows: list[dict[str, Any]]) -> None:
    """Computed traits and rollups for the stored rows: one executemany each."""
    totals: dict[str, dict[str, Any]] = {}
    counts: dict[tuple[str, str, Any], int] = defaultdict(int)
    revenue: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        cid, at = row["customer_id"], row["occurred_at"]
        t = totals.get(cid)
        if t is None:
            t = totals[cid] = {"customer_id": cid, "n": 0, "first": at, "last": at, "last_channel": None,
                               "purchases": 0, "last_purchase": None, "channel_at": None}
        t["n"] += 1
        t["first"] = min(t["first"], at)
        t["last"] = max(t["last"], at)
        if row["channel"] and (t["channel_at"] is None or at >= t["channel_at"]):
            t["last_channel"], t["channel_at"] = row["channel"], at
        if row["revenue_cents"]:
            revenue[(cid, row["currency"])] += row["revenue_cents"]
        if row["kind"] == computed.PURCHASE_KIND:
            t["purchases"] += 1
            if t["last_purchase"] is None or at > t["last_purchase"]:
                t["last_purchase"] = at
        counts[(cid, computed.rollup_name(row["kind"], row["name"]), at.date())] += 1
    computed.apply_event_totals(session, totals.values())
    computed.add_rollups(session, dict(counts))
    computed.add_revenue(session, dict(revenue))


def drain(*, timeout: float = 120.0) -> int:
    """Fold every tracking call accepted until now into the customer memory; events folded.

    The tracking API answers once calls are in the inbox; the folder thread folds them shortly
    after. Reads that must see what was just sent (tests, scripts) call this first.
    """
    from trato.ingest import inbox  # inbox folds through this module

    return inbox.drain(timeout=timeout)
