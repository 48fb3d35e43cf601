"""The campaign pipeline: recipients processed in chunks, each chunk in ONE unit of work — decide
(in bulk, no SQL per decision), book the contacts, render with shared compiled templates, archive
in one append, insert the delivery messages and the recipients' states — then the chunk's
messages are handed to the adapters (:mod:`trato.delivery.bulk`).

Crash safety: a recipient leaves ``pending`` only in the unit of work that creates its message,
and a message's id is derived from (campaign, customer), so a chunk that dies before its commit
is simply done again and one that committed is never done twice. The runner writes a chunk's
messages already claimed (``sending``) and hands them to the adapters right after the commit;
messages a stopped worker left ``sending`` become ``possibly_sent`` (never sent again), those left
queued (retries, chunks written without claiming) are delivered by the next run.
Memory is flat: a chunk at a time, never the whole audience.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trato.archive import chain, compression
from trato.archive import service as archive
from trato.campaigns.message_links import MessageLinks, store_short_links
from trato.campaigns.models import Campaign, CampaignRecipient
from trato.campaigns.tracking import Instrumenter
from trato.content import service as content
from trato.core.channels import ADDRESS_KIND
from trato.core.clock import as_utc, utcnow
from trato.customers import service as customers
from trato.customers import writes
from trato.delivery import bulk
from trato.policy import service as policy

RECIPIENTS = CampaignRecipient.__table__
CAMPAIGNS = Campaign.__table__
HOLDOUT = "holdout"
# Where a delivery message's state leaves its recipient.
RECIPIENT_STATE = {"accepted": "sent", "delivered": "sent", "read": "sent", "bounced": "sent",
                   "possibly_sent": "possibly_sent", "failed": "failed", "dead": "failed", "refused": "failed"}
# A chunk's test hook: called with the step name; tests raise from it to stop a run mid-chunk.
crash_point: Callable[[str], None] | None = None


def _at(step: str) -> None:
    if crash_point is not None:
        crash_point(step)


def bucket(campaign_id: str, customer_id: str, salt: str = "") -> int:
    """A stable number 0-9999 for a customer in a campaign: holdout and variants never change on a re-run."""
    digest = hashlib.sha256(f"{campaign_id}:{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def assign(campaign: Campaign | Plan, customer_id: str) -> str:
    """The customer's group: ``holdout`` (never contacted) or a variant key, by split percentages."""
    if bucket(campaign.id, customer_id) < campaign.holdout_percent * 100:
        return HOLDOUT
    b = bucket(campaign.id, customer_id, "variant")
    total = sum(v["split"] for v in campaign.variants) or 1
    edge = 0.0
    for variant in campaign.variants:
        edge += variant["split"] / total * 10_000
        if b < edge:
            return str(variant["key"])
    return str(campaign.variants[-1]["key"])


def message_id(campaign_id: str, recipient_id: int) -> str:
    """The delivery message id of a recipient (its row in ``campaign_recipients``, one per campaign
    and customer): the same on every run, so no one is sent twice. Ids of one campaign grow with
    the recipient: every index keyed by message id (messages, their events, the timeline, the
    archive, recipients) takes a campaign's messages as appends at its end, not inserts on random
    pages — at a million messages, B-trees far larger than the database's page cache."""
    return f"msg_c{hashlib.sha256(f'campaign:{campaign_id}'.encode()).hexdigest()[:10]}{recipient_id:015d}"


def local_due(zone: str, local_time: str, started: datetime) -> datetime:
    """The first moment at ``local_time`` in ``zone`` from the launch on (today there, else tomorrow)."""
    tz = ZoneInfo(zone)
    hour, minute = (int(x) for x in local_time.split(":"))
    now_there = as_utc(started).astimezone(tz)
    due = now_there.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if due < now_there:
        due = (now_there + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return as_utc(due.astimezone(ZoneInfo("UTC")))


def reason_of(decision: Any) -> str:
    """One reason for a recipient left out or deferred, in the pre-flight's words."""
    for reason in decision.reasons:
        code = reason.code
        if code == "ok":
            continue
        if code == "unreachable":
            return "no_reachable_identity"
        if code in ("no_consent", "consent_pending", "consent_denied"):
            return "no_consent"
        return code  # suppressed, capped, quiet_hours
    return "refused"


def _address(context: dict[str, Any], customer_id: str, channel: str) -> str | None:
    kind = ADDRESS_KIND.get(channel)
    if kind is None:
        return customer_id
    values = (context.get("identities") or {}).get(kind) or []
    return values[0] if values else None


@dataclass(frozen=True)
class Plan:
    """What preparing a chunk needs of its campaign (plain values: it may travel to another process)."""

    id: str
    variants: list[dict[str, Any]]
    holdout_percent: float
    purpose: str
    topic: str | None
    channels: list[str]
    schedule: str
    local_time: str | None
    started_at: datetime | None
    utm: dict[str, str]
    data: dict[str, Any]

    @classmethod
    def of(cls, campaign: Campaign) -> Plan:
        return cls(id=campaign.id, variants=list(campaign.variants), holdout_percent=campaign.holdout_percent,
                   purpose=campaign.purpose, topic=campaign.topic, channels=list(campaign.channels),
                   schedule=campaign.schedule, local_time=campaign.local_time, started_at=campaign.started_at,
                   utm=dict(campaign.utm or {}), data=dict(campaign.data or {}))


class Pending(NamedTuple):
    """A recipient to process (a row of ``campaign_recipients``)."""

    id: int
    customer_id: str
    variant: str | None
    not_before: datetime | None


class Logged(NamedTuple):
    """A decision as the decision log keeps it (what travels back from a pool process: a Decision
    with its reasons and zones is ten times slower to pickle)."""

    outcome: str
    channel: str | None
    at: datetime | None
    reasons: list[list[Any]]

    def compact(self) -> list[list[Any]]:
        return self.reasons


@dataclass
class Prepared:
    """A chunk decided, rendered and archived in memory — everything :func:`write_chunk` stores.
    The adapters' parts travel only inside the archive rows, compressed (:meth:`decoded_parts`
    gives them back): a chunk prepared in a pool process crosses the pipe as ~1.5 MB instead of
    ~10 MB, and receiving those bytes cost the runner more than decompressing them."""

    updates: list[dict[str, Any]] = field(default_factory=list)
    logged: list[tuple[str, str, str, str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    archived: list[dict[str, Any]] = field(default_factory=list)
    reservations: list[dict[str, Any]] = field(default_factory=list)
    recipients: dict[int, str] = field(default_factory=dict)  # recipient id → customer id, the whole chunk
    # Contacts each customer to be sent had in the cap windows when deciding: a customer contacted
    # meanwhile (a single send between preparing and writing) is left pending and decided again.
    contacts_seen: dict[str, int] = field(default_factory=dict)
    at: datetime | None = None
    short_links: list[dict[str, Any]] = field(default_factory=list)  # SMS and WhatsApp links (message_links)

    def decoded_parts(self) -> dict[str, dict[str, str | bytes]]:
        """Each message's parts as rendered and archived, for the adapters."""
        return {row["message_id"]: chain.decode_parts(compression.decompress(row["content"])) for row in self.archived}


    def only(self, recipient_ids: set[int]) -> Prepared:
        """The part of this chunk for these recipients (the rest were taken or stopped meanwhile)."""
        if len(recipient_ids) == len(self.recipients):
            return self
        kept = {self.recipients[i] for i in recipient_ids}
        messages = [m for m in self.messages if m["customer_id"] in kept]
        kept_messages = {m["id"] for m in messages}
        return Prepared(
            updates=[u for u in self.updates if u["b_id"] in recipient_ids],
            logged=[item for item in self.logged if item[0] in kept],
            messages=messages,
            archived=[a for a in self.archived if a["message_id"] in kept_messages],
            reservations=[r for r in self.reservations if r["customer_id"] in kept],
            recipients={i: c for i, c in self.recipients.items() if i in recipient_ids},
            contacts_seen={c: n for c, n in self.contacts_seen.items() if c in kept}, at=self.at,
            short_links=[link for link in self.short_links if link["customer_id"] in kept])


def _update(r: Pending, variant: str | None, state: str, *, now: datetime | None, channel: str | None = None,
            reason: str | None = None, message: str | None = None, not_before: datetime | None = None
            ) -> dict[str, Any]:
    return {"b_id": r.id, "b_variant": variant, "b_state": state, "b_channel": channel, "b_reason": reason,
            "b_message": message, "b_nb": not_before, "b_at": now}


def prepare_chunk(session: Session, plan: Plan, rows: Sequence[Pending], now: datetime) -> Prepared:
    """Decide, render, instrument and archive-encode a chunk of recipients. Reads only: the
    costly part of a chunk, done outside the write transaction (or in another process)."""
    out = Prepared(recipients={r.id: r.customer_id for r in rows}, at=now)
    groups: dict[str, list[str]] = {}
    by_customer = {r.customer_id: r for r in rows}
    for r in rows:
        group = r.variant or assign(plan, r.customer_id)
        if group == HOLDOUT:
            out.updates.append(_update(r, HOLDOUT, "holdout", now=now))
        else:
            groups.setdefault(group, []).append(r.customer_id)
    config = policy.load_config(session)
    deciding = [c for ids in groups.values() for c in ids]
    loaded = customers.load_profiles(session, deciding)  # read once: for the decisions and the templates
    contexts = policy.prepare_contexts(session, customer_ids=deciding, config=config, at=now, loaded=loaded)
    variants = {v["key"]: v for v in plan.variants}
    archived: list[dict[str, Any]] = []
    instrument = Instrumenter(campaign_id=plan.id, utm=plan.utm)
    message_links = MessageLinks(campaign_id=plan.id, utm=plan.utm)
    for key, ids in groups.items():
        variant = variants[key]
        communication, version = content.approved_version(session, communication_id=variant["communication_id"],
                                                          version_id=variant.get("version_id"))
        due_now, prepared = [], []
        for cid in ids:
            r, ctx = by_customer[cid], contexts.get(cid)
            if ctx is None:  # the profile is gone (erased or merged away since the snapshot)
                out.updates.append(_update(r, key, "excluded", now=now, reason="no_profile"))
                continue
            if plan.schedule == "local" and r.not_before is None and plan.local_time:
                due = local_due(ctx.zone, plan.local_time, plan.started_at or now)
                if due > now:
                    out.updates.append(_update(r, key, "pending", now=None, not_before=due))
                    continue
            due_now.append(cid)
            prepared.append(ctx)
        decisions = policy.decide_many(prepared, config=config, communication=communication.key,
                                       purpose=plan.purpose, channels=plan.channels, at=now,
                                       topic=plan.topic or None)
        sending: list[tuple[str, str]] = []
        decided: dict[str, Any] = {}
        for cid, decision in zip(due_now, decisions, strict=True):
            r = by_customer[cid]
            out.logged.append((cid, communication.key, plan.purpose, plan.topic or "",
                               Logged(decision.outcome, decision.channel, decision.at, decision.compact())))
            if decision.outcome == "send" and decision.channel:
                sending.append((cid, decision.channel))
                decided[cid] = decision
            elif decision.outcome == "defer":
                out.updates.append(_update(r, key, "pending", now=None, reason=reason_of(decision),
                                           not_before=decision.until))
            else:
                out.updates.append(_update(r, key, "excluded", now=now, reason=reason_of(decision)))
        ids = {cid: message_id(plan.id, by_customer[cid].id) for cid, _ in sending}
        rendered = content.render_many(session, communication_id=communication.id, version_id=version.id,
                                       items=sending, data=plan.data, at=now, message_ids=ids, loaded=loaded)
        messages: list[dict[str, Any]] = []
        for cid, channel in sending:
            r, decision, done = by_customer[cid], decided[cid], rendered.get(cid)
            recipient = _address(done.context, cid, channel) if done is not None else None
            if done is None or recipient is None:
                out.updates.append(_update(r, key, "excluded", now=now, channel=channel,
                                           reason="not_rendered" if done is None else "no_reachable_identity"))
                continue
            parts = dict(done.parts)
            if channel == "email" and isinstance(parts.get("html"), str):
                links = done.context.get("links") or {}
                parts["html"] = instrument.email_html(
                    str(parts["html"]), customer_id=cid, variant=key, channel=channel,
                    unsubscribe_url=links.get("unsubscribe"), preferences_url=links.get("preferences"))
            mid = ids[cid]
            parts = message_links.apply(parts, customer_id=cid, message_id=mid, variant=key, channel=channel,
                                        links=done.context.get("links") or {})
            decision_json = {"outcome": "send", "channel": channel, "at": now.isoformat(), "zone": decision.zone,
                             "reasons": decision.compact(), "campaign_id": plan.id, "variant": key}
            messages.append({
                "id": mid, "idempotency_key": f"campaign:{plan.id}:{cid}", "communication_id": communication.id,
                "customer_id": cid, "purpose": plan.purpose, "topic": plan.topic or "",
                # The campaign's data stays in the campaign (delivery.data_of finds it for a failover).
                "data": {}, "requested_channels": list(plan.channels), "channel": channel,
                "recipient": recipient, "language": done.language, "state": "queued", "provider": None,
                "provider_message_id": None, "decision": decision_json, "reservation_id": None,
                "archive_entry_id": None, "attempts": 0, "last_error": None, "not_before": None,
                "created_by": f"campaign:{plan.id}", "created_at": now, "updated_at": now, "accepted_at": None,
            })
            encoded = chain.encode_parts(parts)
            archived.append({"customer_id": cid, "communication_id": communication.id, "version_id": version.id,
                             "channel": channel, "language": done.language, "recipient": recipient, "parts": parts,
                             "encoded": encoded, "decision": decision_json, "message_id": mid})
            out.reservations.append({"customer_id": cid, "channel": channel, "purpose": plan.purpose,
                                     "topic": plan.topic, "communication": communication.key, "sent_at": now})
            out.updates.append(_update(r, key, "queued", now=now, channel=channel, message=mid))
        out.messages.extend(messages)
    out.archived = archive.prepare_many(archived)
    out.short_links = list(message_links.rows.values())
    if out.messages:
        sending = [m["customer_id"] for m in out.messages]
        seen = policy.contact_counts(session, customer_ids=sending, config=config, at=now)
        out.contacts_seen = {cid: seen.get(cid, 0) for cid in sending}
    return out


def _contacted_meanwhile(session: Session, prepared: Prepared) -> Prepared:
    """The prepared chunk without the customers someone else contacted since it was decided
    (they stay pending: the next chunk decides them again, with that contact counted)."""
    if not prepared.contacts_seen or prepared.at is None:
        return prepared
    customer_ids = list(prepared.contacts_seen)
    policy.lock_customers(session, customer_ids)
    now_counts = policy.contact_counts(session, customer_ids=customer_ids, config=policy.load_config(session),
                                       at=prepared.at)
    moved = {cid for cid, n in prepared.contacts_seen.items() if now_counts.get(cid, 0) != n}
    if not moved:
        return prepared
    return prepared.only({rid for rid, cid in prepared.recipients.items() if cid not in moved})


# A recipient's state after its chunk (statements run as plain driver executemany: one a recipient).
_MOVE_RECIPIENT = ("UPDATE campaign_recipients SET variant = :b_variant, state = :b_state, channel = :b_channel, "
                   "reason = :b_reason, message_id = :b_message, not_before = :b_nb, processed_at = :b_at "
                   "WHERE id = :b_id")
_FOLLOW_MESSAGE = "UPDATE campaign_recipients SET state = :b_state WHERE message_id = :b_message"


def write_chunk(session: Session, campaign: Campaign, prepared: Prepared, now: datetime, *,
                claim: bool = False) -> list[str]:
    """Store a prepared chunk in the caller's unit of work: decisions, contact bookings, the
    archive append, the queued messages and the recipients' states. Returns the message ids.
    ``claim``: the caller hands them to the adapters as soon as this unit of work commits
    (:func:`deliver` with ``claimed``), so they are written ``sending`` (attempt 1) rather than
    ``queued`` — a worker stopped between that commit and the provider call leaves them possibly
    sent, as one stopped between a separate claim and the call did. A campaign message reaches the customer's timeline
    once, with the provider's answer (:mod:`trato.delivery.bulk`), not also when queued: a
    behavioural segment counting ``message_sent`` counts each campaign message once."""
    _at("decided")
    prepared = _contacted_meanwhile(session, prepared)
    policy.log_decisions(session, prepared.logged)
    messages = prepared.messages
    for message, reservation_id, entry_id in zip(messages, policy.reserve_many(session, prepared.reservations),
                                                  archive.append_prepared(session, prepared.archived,
                                                                          new_messages=True), strict=True):
        message["reservation_id"], message["archive_entry_id"] = reservation_id, entry_id
    _at("archived")
    if claim:  # "sending" since now, not since the chunk began (stale sending is measured from here)
        claimed_at = utcnow()
        for message in messages:
            message.update(state="sending", attempts=1, updated_at=claimed_at)
    bulk.insert_queued(session, messages)
    store_short_links(session, prepared.short_links)
    if prepared.updates:
        conn = session.connection()
        dialect = conn.dialect.name
        writes.execute_many(conn, writes.driver_sql(dialect, _MOVE_RECIPIENT), [
            {**u, "b_nb": writes.moment(dialect, u["b_nb"]), "b_at": writes.moment(dialect, u["b_at"])}
            for u in prepared.updates])
    count_processed(session, campaign, sum(1 for u in prepared.updates if u["b_state"] != "pending"), now)
    _at("before_commit")
    return [m["id"] for m in messages]


def sync_recipients(session: Session, states: dict[str, str]) -> None:
    """Recipients follow their messages' delivery states (sent, failed, possibly sent)."""
    moves = [{"b_message": mid, "b_state": RECIPIENT_STATE[state]} for mid, state in states.items()
             if state in RECIPIENT_STATE]
    if moves:
        conn = session.connection()
        writes.execute_many(conn, writes.driver_sql(conn.dialect.name, _FOLLOW_MESSAGE), moves)


def deliver(message_ids: list[str], parts: dict[str, dict[str, str | bytes]] | None = None,
            stale: timedelta | None = None, claimed: Sequence[dict[str, Any]] = ()) -> dict[str, str]:
    """Hand messages to the adapters, then move their recipients along. ``claimed``: the rows of
    messages :func:`write_chunk` wrote already claimed (sent as they are, nothing read back)."""
    if not message_ids:
        return {}
    states = bulk.deliver_many(message_ids, parts=parts, stale=stale, then=sync_recipients,
                               claimed={m["id"]: m for m in claimed} or None)
    _at("delivered")
    return states


def left_behind(session: Session, campaign_id: str, limit: int = 500) -> list[str]:
    """Message ids of recipients still ``queued``: a stopped worker's chunk, or retries in flight."""
    return list(session.scalars(select(RECIPIENTS.c.message_id).where(
        RECIPIENTS.c.campaign_id == campaign_id, RECIPIENTS.c.state == "queued").order_by(RECIPIENTS.c.id)
        .limit(limit)))


def queued_page(session: Session, campaign_id: str, *, after: int, limit: int) -> list[tuple[int, str]]:
    """(recipient id, message id) of ``queued`` recipients past ``after``: :func:`left_behind` page by page."""
    return [(rid, mid) for rid, mid in session.execute(select(RECIPIENTS.c.id, RECIPIENTS.c.message_id).where(
        RECIPIENTS.c.campaign_id == campaign_id, RECIPIENTS.c.state == "queued", RECIPIENTS.c.id > after)
        .order_by(RECIPIENTS.c.id).limit(limit))]


def _due(campaign_id: str, now: datetime) -> Any:
    return select(RECIPIENTS.c.id, RECIPIENTS.c.customer_id, RECIPIENTS.c.variant, RECIPIENTS.c.not_before).where(
        RECIPIENTS.c.campaign_id == campaign_id, RECIPIENTS.c.state == "pending",
        (RECIPIENTS.c.not_before.is_(None)) | (RECIPIENTS.c.not_before <= now)).order_by(RECIPIENTS.c.id)


def next_rows(session: Session, campaign: Campaign, now: datetime) -> list[Any]:
    """Claim the next chunk of due pending recipients until the caller's unit of work ends. On
    PostgreSQL rows that another run has claimed are skipped (``FOR UPDATE SKIP LOCKED``), so runs
    on several workers take different recipients; SQLite has one writer at a time anyway."""
    size = min(campaign.chunk_size, campaign.throttle_per_minute or campaign.chunk_size)
    return list(session.execute(_due(campaign.id, now).limit(size).with_for_update(skip_locked=True)))


def due_waiting(session: Session, campaign_id: str, now: datetime) -> tuple[bool, bool]:
    """(any due pending recipient no run holds, any due pending recipient at all)."""
    free = session.execute(_due(campaign_id, now).limit(1).with_for_update(skip_locked=True)).first()
    if free is not None:
        return True, True
    return False, session.execute(_due(campaign_id, now).limit(1)).first() is not None


def count_processed(session: Session, campaign: Campaign, count: int, now: datetime) -> None:
    """Add a chunk's processed recipients to the campaign's counter in the database, not to the row
    as read: runs on other workers add theirs at the same time."""
    session.execute(update(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign.id).values(
        processed=CAMPAIGNS.c.processed + count, updated_at=now))
    session.expire(campaign, ["processed", "updated_at"])


def pending_after(session: Session, campaign_id: str, *, after_id: int, limit: int, now: datetime) -> list[Pending]:
    """The next ``limit`` recipients due now after ``after_id`` (what a chunk prepared ahead takes)."""
    return [Pending(*r) for r in session.execute(
        _due(campaign_id, now).where(RECIPIENTS.c.id > after_id).limit(limit))]


def still_pending(session: Session, campaign_id: str, recipient_ids: list[int]) -> set[int]:
    """Which of these recipients are still pending, locked for the caller's unit of work."""
    if not recipient_ids:
        return set()
    return set(session.scalars(select(RECIPIENTS.c.id).where(
        RECIPIENTS.c.campaign_id == campaign_id, RECIPIENTS.c.id.in_(recipient_ids),
        RECIPIENTS.c.state == "pending").with_for_update(skip_locked=True)))  # held by another run: not ours


def next_due(session: Session, campaign_id: str) -> datetime | None:
    """When the first waiting recipient is due (local times, deferrals), if any is waiting."""
    found = session.scalar(select(func.min(RECIPIENTS.c.not_before)).where(
        RECIPIENTS.c.campaign_id == campaign_id, RECIPIENTS.c.state == "pending"))
    return as_utc(found) if found is not None else None
