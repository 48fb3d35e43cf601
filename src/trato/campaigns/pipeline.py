"""The campaign pipeline: recipients processed in chunks, each chunk in ONE unit of work — decide
(in bulk, no SQL per decision), book the contacts, render with shared compiled templates, archive
in one append, insert the delivery messages and the recipients' states — then the chunk's
messages are handed to the adapters (:mod:`trato.delivery.bulk`).

Crash safety: a recipient leaves ``pending`` only in the unit of work that creates its message,
and a message's id is derived from (campaign, customer), so a chunk that dies before its commit
is simply done again and one that committed is never done twice; messages left queued by a
stopped worker are delivered by the next run, those left ``sending`` become ``possibly_sent``.
Memory is flat: a chunk at a time, never the whole audience.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from trato.archive import service as archive
from trato.campaigns.message_links import MessageLinks
from trato.campaigns.models import Campaign, CampaignRecipient
from trato.campaigns.tracking import Instrumenter
from trato.content import service as content
from trato.core.channels import ADDRESS_KIND
from trato.core.clock import as_utc
from trato.core.db import unit_of_work
from trato.customers import service as customers
from trato.delivery import bulk
from trato.policy import service as policy

RECIPIENTS = CampaignRecipient.__table__
HOLDOUT = "holdout"
STALE = timedelta(minutes=5)  # a message ``sending`` this long was left by a stopped worker (as delivery's sweep)
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


def assign(campaign: Campaign, customer_id: str) -> str:
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


def message_id(campaign_id: str, customer_id: str) -> str:
    """The delivery message id of a recipient: the same on every run, so no one is sent twice."""
    return "msg_c" + hashlib.sha256(f"campaign:{campaign_id}:{customer_id}".encode()).hexdigest()[:32]


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


def process_chunk(session: Session, campaign: Campaign, rows: list[Any], now: datetime
                  ) -> tuple[list[str], dict[str, dict[str, str | bytes]]]:
    """One chunk of pending recipients in the caller's unit of work; returns the queued message ids
    and their parts (handed to the adapters after commit)."""
    updates: list[dict[str, Any]] = []
    groups: dict[str, list[str]] = {}
    by_customer = {r.customer_id: r for r in rows}
    for r in rows:
        group = r.variant or assign(campaign, r.customer_id)
        if group == HOLDOUT:
            updates.append({"b_id": r.id, "b_variant": HOLDOUT, "b_state": "holdout", "b_channel": None,
                            "b_reason": None, "b_message": None, "b_nb": None, "b_at": now})
        else:
            groups.setdefault(group, []).append(r.customer_id)
    config = policy.load_config(session)
    contexts = policy.prepare_contexts(session, customer_ids=[c for ids in groups.values() for c in ids],
                                       config=config, at=now)
    variants = {v["key"]: v for v in campaign.variants}
    messages: list[dict[str, Any]] = []
    archived: list[dict[str, Any]] = []
    reservations: list[dict[str, Any]] = []
    logged: list[tuple[str, str, str, str, Any]] = []
    parts_of: dict[str, dict[str, str | bytes]] = {}
    instrument = Instrumenter(campaign_id=campaign.id, utm=campaign.utm or {})
    message_links = MessageLinks(campaign_id=campaign.id, utm=campaign.utm or {})
    for key, ids in groups.items():
        variant = variants[key]
        communication, version = content.approved_version(session, communication_id=variant["communication_id"],
                                                          version_id=variant.get("version_id"))
        due_now, prepared = [], []
        for cid in ids:
            r, ctx = by_customer[cid], contexts.get(cid)
            if ctx is None:  # the profile is gone (erased or merged away since the snapshot)
                updates.append({"b_id": r.id, "b_variant": key, "b_state": "excluded", "b_channel": None,
                                "b_reason": "no_profile", "b_message": None, "b_nb": None, "b_at": now})
                continue
            if campaign.schedule == "local" and r.not_before is None and campaign.local_time:
                due = local_due(ctx.zone, campaign.local_time, campaign.started_at or now)
                if due > now:
                    updates.append({"b_id": r.id, "b_variant": key, "b_state": "pending", "b_channel": None,
                                    "b_reason": None, "b_message": None, "b_nb": due, "b_at": None})
                    continue
            due_now.append(cid)
            prepared.append(ctx)
        decisions = policy.decide_many(prepared, config=config, communication=communication.key,
                                       purpose=campaign.purpose, channels=campaign.channels, at=now,
                                       topic=campaign.topic or None)
        sending: list[tuple[str, str]] = []
        decided: dict[str, Any] = {}
        for cid, decision in zip(due_now, decisions, strict=True):
            r = by_customer[cid]
            logged.append((cid, communication.key, campaign.purpose, campaign.topic or "", decision))
            if decision.outcome == "send" and decision.channel:
                sending.append((cid, decision.channel))
                decided[cid] = decision
            elif decision.outcome == "defer":
                updates.append({"b_id": r.id, "b_variant": key, "b_state": "pending", "b_channel": None,
                                "b_reason": reason_of(decision), "b_message": None, "b_nb": decision.until,
                                "b_at": None})
            else:
                updates.append({"b_id": r.id, "b_variant": key, "b_state": "excluded", "b_channel": None,
                                "b_reason": reason_of(decision), "b_message": None, "b_nb": None, "b_at": now})
        rendered = content.render_many(session, communication_id=communication.id, version_id=version.id,
                                       items=sending, data=campaign.data, at=now)
        for cid, channel in sending:
            r, decision, out = by_customer[cid], decided[cid], rendered.get(cid)
            recipient = _address(out.context, cid, channel) if out is not None else None
            if out is None or recipient is None:
                updates.append({"b_id": r.id, "b_variant": key, "b_state": "excluded", "b_channel": channel,
                                "b_reason": "not_rendered" if out is None else "no_reachable_identity",
                                "b_message": None, "b_nb": None, "b_at": now})
                continue
            parts = dict(out.parts)
            if channel == "email" and isinstance(parts.get("html"), str):
                links = out.context.get("links") or {}
                parts["html"] = instrument.email_html(
                    str(parts["html"]), customer_id=cid, variant=key, channel=channel,
                    unsubscribe_url=links.get("unsubscribe"), preferences_url=links.get("preferences"))
            parts = message_links.apply(parts, customer_id=cid, message_id=message_id(campaign.id, cid), variant=key,
                                        channel=channel, links=out.context.get("links") or {})
            mid = message_id(campaign.id, cid)
            decision_json = {"outcome": "send", "channel": channel, "at": now.isoformat(), "zone": decision.zone,
                             "reasons": decision.compact(), "campaign_id": campaign.id, "variant": key}
            messages.append({
                "id": mid, "idempotency_key": f"campaign:{campaign.id}:{cid}", "communication_id": communication.id,
                "customer_id": cid, "purpose": campaign.purpose, "topic": campaign.topic or "",
                "data": campaign.data or {}, "requested_channels": list(campaign.channels), "channel": channel,
                "recipient": recipient, "language": out.language, "state": "queued", "provider": None,
                "provider_message_id": None, "decision": decision_json, "reservation_id": None,
                "archive_entry_id": None, "attempts": 0, "last_error": None, "not_before": None,
                "created_by": f"campaign:{campaign.id}", "created_at": now, "updated_at": now, "accepted_at": None,
            })
            archived.append({"customer_id": cid, "communication_id": communication.id, "version_id": version.id,
                             "channel": channel, "language": out.language, "recipient": recipient, "parts": parts,
                             "decision": decision_json, "message_id": mid})
            reservations.append({"customer_id": cid, "channel": channel, "purpose": campaign.purpose,
                                 "topic": campaign.topic, "communication": communication.key, "sent_at": now})
            parts_of[mid] = parts
            updates.append({"b_id": r.id, "b_variant": key, "b_state": "queued", "b_channel": channel,
                            "b_reason": None, "b_message": mid, "b_nb": None, "b_at": now})
    _at("decided")
    policy.log_decisions(session, logged)
    for message, reservation_id, entry_id in zip(messages, policy.reserve_many(session, reservations),
                                                  archive.record_many(session, archived), strict=True):
        message["reservation_id"], message["archive_entry_id"] = reservation_id, entry_id
    _at("archived")
    bulk.insert_queued(session, messages)
    message_links.store(session)
    keys = {m["communication_id"]: content.get_communication(session, m["communication_id"]).key for m in messages}
    customers.record_events(session, rows=bulk.timeline_rows(messages, keys, now))
    if updates:
        session.connection().execute(
            update(RECIPIENTS).where(RECIPIENTS.c.id == bindparam("b_id")).values(
                variant=bindparam("b_variant"), state=bindparam("b_state"), channel=bindparam("b_channel"),
                reason=bindparam("b_reason"), message_id=bindparam("b_message"), not_before=bindparam("b_nb"),
                processed_at=bindparam("b_at")), updates)
    campaign.processed += sum(1 for u in updates if u["b_state"] != "pending")
    campaign.updated_at = now
    _at("before_commit")
    return [m["id"] for m in messages], parts_of


def sync_recipients(session: Session, states: dict[str, str]) -> None:
    """Recipients follow their messages' delivery states (sent, failed, possibly sent)."""
    moves = [{"b_message": mid, "b_state": RECIPIENT_STATE[state]} for mid, state in states.items()
             if state in RECIPIENT_STATE]
    if moves:
        session.connection().execute(update(RECIPIENTS).where(RECIPIENTS.c.message_id == bindparam("b_message"))
                                     .values(state=bindparam("b_state")), moves)


def deliver(message_ids: list[str], parts: dict[str, dict[str, str | bytes]] | None = None,
            stale: timedelta | None = None) -> dict[str, str]:
    """Hand messages to the adapters, then move their recipients along."""
    if not message_ids:
        return {}
    states = bulk.deliver_many(message_ids, parts=parts, stale=stale)
    _at("delivered")
    with unit_of_work() as session:
        sync_recipients(session, states)
    return states


def left_behind(session: Session, campaign_id: str, limit: int = 500) -> list[str]:
    """Message ids of recipients still ``queued``: a stopped worker's chunk, or retries in flight."""
    return list(session.scalars(select(RECIPIENTS.c.message_id).where(
        RECIPIENTS.c.campaign_id == campaign_id, RECIPIENTS.c.state == "queued").order_by(RECIPIENTS.c.id)
        .limit(limit)))


def next_rows(session: Session, campaign: Campaign, now: datetime) -> list[Any]:
    return list(session.execute(select(RECIPIENTS.c.id, RECIPIENTS.c.customer_id, RECIPIENTS.c.variant,
                                       RECIPIENTS.c.not_before).where(
        RECIPIENTS.c.campaign_id == campaign.id, RECIPIENTS.c.state == "pending",
        (RECIPIENTS.c.not_before.is_(None)) | (RECIPIENTS.c.not_before <= now))
        .order_by(RECIPIENTS.c.id).limit(min(campaign.chunk_size, campaign.throttle_per_minute or campaign.chunk_size))))


def next_due(session: Session, campaign_id: str) -> datetime | None:
    """When the first waiting recipient is due (local times, deferrals), if any is waiting."""
    found = session.scalar(select(func.min(RECIPIENTS.c.not_before)).where(
        RECIPIENTS.c.campaign_id == campaign_id, RECIPIENTS.c.state == "pending"))
    return as_utc(found) if found is not None else None
