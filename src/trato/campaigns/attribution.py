"""Campaign results as they happen: each batch of timeline entries stored (tracking API, imports,
``customers.record_event(s)``) is looked at in its own transaction, and

- a ``track`` (or ``purchase``) event named as the conversion event of a launched campaign that
  contacted (or held out) the customer less than its window before is counted at once as that
  campaign's and variant's conversion (the very row the five-minute sweep would write: it stays
  as a backstop);
- a consent withdrawn through a link that names the message it came in (one-click
  ``List-Unsubscribe``, the preference center opened from the message) is counted as the
  message's campaign's ``unsubscribed`` when it withdraws the campaign's purpose.

:func:`count_event` records what a recipient did, first time only, for these and for the
tracking links. This module stays light (the folder process imports it for its first batch).

Ingest throughput matters: rows are only compared with a set of conversion event names kept in
memory (read again every ``REFRESH_SECONDS`` and as soon as this process launches a campaign), so
events that are nobody's conversion cost a dictionary look-up each. A campaign launched by another
process (the API, while ``trato fold`` folds the tracking API's events) is seen within
``REFRESH_SECONDS``; a conversion in those first seconds is found by the sweep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from trato.campaigns.models import ATTRIBUTED, CONVERSION_KINDS, Campaign, CampaignEvent, CampaignRecipient
from trato.core.clock import as_utc, utcnow
from trato.core.db import chunks, insert_for, on_commit
from trato.customers import service as customers

log = structlog.get_logger("trato.campaigns")

TIMELINE_KIND = {"opened": "message_opened", "clicked": "message_clicked", "unsubscribed": "message_unsubscribed",
                 "converted": "campaign_converted"}

REFRESH_SECONDS = 2.0  # one small query every two seconds per process
LONGEST_WINDOW = timedelta(days=90)  # the longest conversion window a campaign may have

# (monotonic time until which it holds, {conversion event name: [(campaign id, window), ...]})
_active: tuple[float, dict[str, list[tuple[str, timedelta]]]] = (0.0, {})
_lock = threading.Lock()


def count_event(session: Session, *, campaign_id: str, customer_id: str, variant: str | None,
                channel: str | None, kind: str, url: str | None = None) -> bool:
    """Record the first time a recipient did ``kind`` (and put it on their timeline); False if a repeat."""
    found = session.execute(insert_for(session)(CampaignEvent).values(
        campaign_id=campaign_id, customer_id=customer_id, variant=variant, channel=channel, kind=kind,
        url=url[:2000] if url else None, at=utcnow()).on_conflict_do_nothing(
        index_elements=["campaign_id", "customer_id", "kind"])).rowcount
    if found:
        customers.record_event(session, customer_id=customer_id, kind=TIMELINE_KIND[kind], channel=channel,
                               source_id="campaigns", message_id=f"{campaign_id}:{customer_id}:{kind}",
                               properties={"campaign_id": campaign_id, "variant": variant, "url": url})
    return bool(found)


def forget_active() -> None:
    """Read the campaigns' conversion events again on the next batch (a campaign was launched)."""
    global _active
    _active = (0.0, {})


def forget_active_after_commit(session: Session) -> None:
    """After the caller's transaction commits, forget the conversion events held in memory."""
    on_commit(session, forget_active)


def active_conversions(session: Session) -> dict[str, list[tuple[str, timedelta]]]:
    """Conversion event names of launched campaigns whose windows may still be open, with each
    campaign's id and window; from memory, read again every ``REFRESH_SECONDS``."""
    global _active
    until, found = _active
    now = time.monotonic()
    if now < until:
        return found
    with _lock:
        until, found = _active
        if now < until:
            return found
        found = {}
        today = utcnow()
        for campaign_id, name, days, finished in session.execute(select(
                Campaign.id, Campaign.conversion_event, Campaign.conversion_days, Campaign.finished_at).where(
                Campaign.conversion_event.is_not(None), Campaign.state != "draft",
                or_(Campaign.finished_at.is_(None), Campaign.finished_at >= today - LONGEST_WINDOW))):
            window = timedelta(days=days)
            if finished is None or as_utc(finished) + window > today:
                found.setdefault(name, []).append((campaign_id, window))
        _active = (time.monotonic() + REFRESH_SECONDS, found)
        return found


def react(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """The reaction to stored timeline entries (see the module's docstring)."""
    conversions = active_conversions(session)
    conversion_rows, consent_rows = [], []
    for row in rows:
        kind = row["kind"]
        if kind in CONVERSION_KINDS:
            if row["name"] in conversions:
                conversion_rows.append(row)
        elif kind == "consent":
            properties = row["properties"] or {}
            if properties.get("via_message_id") and properties.get("state") == "denied":
                consent_rows.append(row)
    if not conversion_rows and not consent_rows:
        return
    try:
        # The events are stored whatever happens here: a failure leaves the counting to the sweep.
        with session.begin_nested():
            if conversion_rows:
                attribute(session, conversion_rows, conversions)
            if consent_rows:
                count_unsubscribes(session, consent_rows)
    except Exception:
        log.exception("could not attribute events to campaigns as they arrived")


def attribute(session: Session, rows: Sequence[dict[str, Any]],
              conversions: dict[str, list[tuple[str, timedelta]]]) -> int:
    """Count these conversion events for the campaigns that reached their customers within the
    window (as ``results.attribute_conversions`` would); returns how many were new."""
    by_campaign: dict[str, tuple[timedelta, dict[str, list[datetime]]]] = {}
    for row in rows:
        for campaign_id, window in conversions.get(row["name"], ()):
            at = as_utc(row["occurred_at"])
            by_campaign.setdefault(campaign_id, (window, {}))[1].setdefault(row["customer_id"], []).append(at)
    if not by_campaign:
        return 0
    # A recipient keeps the profile id it was sent to; merged since into another profile, its events
    # now come under that one. Each event's profile stands for every profile merged into it.
    holder = {alias: cid for cid, aliases in customers.merged_into(
        session, {c for _, times in by_campaign.values() for c in times}).items() for alias in aliases}
    r = CampaignRecipient
    new = 0
    for campaign_id, (window, times) in by_campaign.items():
        for part in chunks(sorted(a for a, cid in holder.items() if cid in times), 500):
            for customer_id, variant, channel, processed_at in session.execute(
                    select(r.customer_id, r.variant, r.channel, r.processed_at).where(
                        r.campaign_id == campaign_id, r.customer_id.in_(part), r.state.in_(ATTRIBUTED),
                        r.processed_at.is_not(None))):
                since = as_utc(processed_at)
                if any(since <= at < since + window for at in times[holder[customer_id]]):
                    new += count_event(session, campaign_id=campaign_id, customer_id=customer_id,
                                               variant=variant, channel=channel, kind="converted")
    return new


def count_unsubscribes(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Count consents withdrawn through a campaign message's link as the campaign's unsubscribes
    (when they withdraw the campaign's purpose); returns how many were new."""
    r = CampaignRecipient
    new = 0
    for row in rows:
        properties = row["properties"]
        found = session.execute(select(r.campaign_id, r.customer_id, r.variant, r.channel, Campaign.purpose).join(
            Campaign, Campaign.id == r.campaign_id).where(r.message_id == properties["via_message_id"])).first()
        if found is not None and found.purpose == properties.get("purpose"):
            new += count_event(session, campaign_id=found.campaign_id, customer_id=found.customer_id,
                                       variant=found.variant, channel=found.channel, kind="unsubscribed")
    return new


customers.react_to_events(react)
