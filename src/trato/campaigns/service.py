"""The campaigns domain's public face: create and approve a campaign, check it before sending
(pre-flight, test send), launch it on a snapshot of its segment, run it chunk by chunk with
pause / resume / cancel honoured between chunks, and read its progress.

Every change writes its audit row in the caller's unit of work; :func:`run` is the queued work
(it opens its own units of work, one per chunk).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session

from trato.archive import service as archive
from trato.audiences import service as audiences
from trato.campaigns import attribution, pipeline, runner
from trato.campaigns.errors import (
    ApprovalRequired, CampaignNotFound, CampaignStateConflict, InvalidCampaign, SelfApproval,
)
from trato.campaigns.models import SCHEDULES, STRATEGIES, Campaign, CampaignRecipient
from trato.content import service as content
from trato.core import audit
from trato.core.channels import CHANNELS
from trato.core.clock import as_utc, utcnow
from trato.core.db import on_commit
from trato.core.errors import TratoError
from trato.core.ids import new_id
from trato.customers import service as customers
from trato.delivery import service as delivery
from trato.delivery.channels import registry
from trato.delivery.channels.base import OutgoingMessage, ProviderResult
from trato.policy import service as policy

MAX_CHUNK = 5000
SAMPLE = 5
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _invalid(field: str, message: str) -> InvalidCampaign:
    return InvalidCampaign(f"{field}: {message}", details={"field": field})


# -- creating -------------------------------------------------------------------------------------


def create_campaign(
    session: Session, *, actor: str, name: str, segment_id: str, communication: str | None = None,
    variants: list[dict[str, Any]] | None = None, channels: list[str] | None = None, strategy: str = "preferred",
    purpose: str | None = None, topic: str = "", holdout_percent: int = 0, schedule: str = "now",
    send_at: datetime | None = None, local_time: str | None = None, throttle_per_minute: int | None = None,
    chunk_size: int = 500, data: dict[str, Any] | None = None, utm: dict[str, str] | None = None,
    conversion_event: str | None = None, conversion_days: int = 7, seeds: list[str] | None = None,
) -> Campaign:
    """A draft campaign: one communication (or A/B ``variants`` of communications or approved
    versions with split percentages), a segment, a channel strategy, a purpose and a schedule."""
    name = (name or "").strip()
    if not 0 < len(name) <= 200:
        raise _invalid("name", "a campaign needs a name of 1-200 characters")
    segment = audiences.get_segment(session, segment_id)
    if variants is None:
        if not communication:
            raise _invalid("communication", "give a communication or variants")
        variants = [{"key": "A", "communication": communication, "split": 100}]
    if not 1 <= len(variants) <= 10:
        raise _invalid("variants", "a campaign has 1 to 10 variants")
    clean: list[dict[str, Any]] = []
    for i, v in enumerate(variants):
        key = str(v.get("key") or chr(ord("A") + i))
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,16}", key) or key == pipeline.HOLDOUT:
            raise _invalid(f"variants[{i}].key", "1-16 letters, digits, - or _ (and not 'holdout')")
        split = v.get("split", 100 // len(variants))
        if not isinstance(split, int) or not 0 < split <= 100:
            raise _invalid(f"variants[{i}].split", "a whole percentage from 1 to 100")
        try:
            found, version = content.approved_version(
                session, communication_id=str(v.get("communication") or v.get("communication_id") or communication),
                version_id=v.get("version_id"))
        except TratoError as exc:
            raise InvalidCampaign(f"variants[{i}]: {exc.message}", code=exc.code,
                                  details={"field": f"variants[{i}]"}) from None
        clean.append({"key": key, "communication_id": found.id, "communication": found.key,
                      "version_id": v.get("version_id"), "split": split})
    if len({v["key"] for v in clean}) != len(clean):
        raise _invalid("variants", "variant keys must differ")
    if sum(v["split"] for v in clean) != 100:
        raise _invalid("variants", "the splits must add up to 100")
    first = content.get_communication(session, clean[0]["communication_id"])
    order = list(dict.fromkeys(channels or first.channels or []))
    if not order or any(ch not in CHANNELS for ch in order):
        raise _invalid("channels", f"one or more of {', '.join(CHANNELS)}")
    if strategy not in STRATEGIES:
        raise _invalid("strategy", "preferred (the policy's choice with fallbacks) or fixed")
    if strategy == "fixed" and len(order) != 1:
        raise _invalid("channels", "a fixed channel strategy names exactly one channel")
    purpose = purpose or first.purpose
    try:
        policy.check_request(policy.load_config(session), purpose=purpose, channels=order, topic=topic or "")
    except TratoError as exc:
        raise InvalidCampaign(exc.message, code=exc.code, details={"field": "purpose"}) from None
    if not 0 <= holdout_percent <= 50:
        raise _invalid("holdout_percent", "from 0 to 50")
    if schedule not in SCHEDULES:
        raise _invalid("schedule", "now, at (a UTC time) or local (a time in each recipient's zone)")
    if schedule == "at" and send_at is None:
        raise _invalid("send_at", "a scheduled campaign needs send_at")
    if schedule == "local" and not (local_time and _TIME.match(local_time)):
        raise _invalid("local_time", "HH:MM, the time in each recipient's zone")
    if throttle_per_minute is not None and not 1 <= throttle_per_minute <= 1_000_000:
        raise _invalid("throttle_per_minute", "from 1 to 1,000,000 messages a minute")
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise _invalid("chunk_size", f"from 1 to {MAX_CHUNK}")
    if not 1 <= conversion_days <= 90:
        raise _invalid("conversion_days", "from 1 to 90")
    now = utcnow()
    campaign = Campaign(
        id=new_id("cmp"), name=name, segment_id=segment.id, purpose=purpose, topic=topic or "", strategy=strategy,
        channels=order, variants=clean, holdout_percent=holdout_percent, data=dict(data or {}), schedule=schedule,
        send_at=as_utc(send_at) if send_at else None, local_time=local_time, throttle_per_minute=throttle_per_minute,
        chunk_size=chunk_size, conversion_event=conversion_event, conversion_days=conversion_days,
        utm={"utm_source": "trato", "utm_medium": order[0], "utm_campaign": _slug(name), **(utm or {})},
        seeds=list(seeds or []), state="draft", created_by=actor, created_at=now, updated_at=now,
    )
    session.add(campaign)
    session.flush()
    audit.record(session, actor=actor, action="campaign.create", object_type="campaign", object_id=campaign.id,
                 name=name, segment_id=segment.id, variants=clean, purpose=purpose, channels=order)
    return campaign


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "campaign"


def get_campaign(session: Session, campaign_id: str) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignNotFound(f"campaign {campaign_id} does not exist", details={"campaign_id": campaign_id})
    return campaign


def list_campaigns(session: Session, *, limit: int = 200) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.created_at.desc()).limit(limit)))


def needs_approval(campaign: Campaign) -> bool:
    return campaign.purpose == "marketing"


def approve(session: Session, *, campaign_id: str, actor: str) -> Campaign:
    """Four eyes for marketing: someone other than the creator approves a draft before launch."""
    campaign = get_campaign(session, campaign_id)
    if campaign.state != "draft":
        raise CampaignStateConflict(f"a {campaign.state} campaign cannot be approved", details={"state": campaign.state})
    if actor == campaign.created_by:
        raise SelfApproval("four eyes: whoever created the campaign cannot approve it; another person must")
    campaign.approved_by, campaign.approved_at, campaign.updated_at = actor, utcnow(), utcnow()
    audit.record(session, actor=actor, action="campaign.approve", object_type="campaign", object_id=campaign.id)
    return campaign


# -- before sending -------------------------------------------------------------------------------


def preflight(session: Session, *, campaign_id: str, chunk_size: int = 500) -> dict[str, Any]:
    """Who would receive it on which channel and who is left out and why, with a sample per reason:
    the segment now (or the launched snapshot), decided in chunks with no SQL per decision."""
    campaign = get_campaign(session, campaign_id)
    now = utcnow()
    config = policy.load_config(session)
    result: dict[str, Any] = {"total": 0, "holdout": 0, "send": {}, "deferred": {}, "excluded": {}, "samples": {},
                              "variants": {}}

    def count(kind: str, reason: str, cid: str) -> None:
        result[kind][reason] = result[kind].get(reason, 0) + 1
        sample = result["samples"].setdefault(reason, [])
        if len(sample) < SAMPLE:
            sample.append(cid)

    keys = {v["key"]: content.get_communication(session, v["communication_id"]).key for v in campaign.variants}
    for ids in _members(session, campaign, chunk_size):
        result["total"] += len(ids)
        groups: dict[str, list[str]] = {}
        for cid in ids:
            group = pipeline.assign(campaign, cid)
            if group == pipeline.HOLDOUT:
                result["holdout"] += 1
            else:
                groups.setdefault(group, []).append(cid)
                result["variants"][group] = result["variants"].get(group, 0) + 1
        contexts = policy.prepare_contexts(session, customer_ids=[c for g in groups.values() for c in g],
                                           config=config, at=now)
        for group, members in groups.items():
            present = [cid for cid in members if cid in contexts]
            decisions = policy.decide_many([contexts[cid] for cid in present], config=config,
                                           communication=keys[group], purpose=campaign.purpose,
                                           channels=campaign.channels, at=now, topic=campaign.topic or None)
            for cid, decision in zip(present, decisions, strict=True):
                if decision.outcome == "send" and decision.channel:
                    result["send"][decision.channel] = result["send"].get(decision.channel, 0) + 1
                elif decision.outcome == "defer":
                    count("deferred", pipeline.reason_of(decision), cid)
                else:
                    count("excluded", pipeline.reason_of(decision), cid)
    result["approval_required"] = needs_approval(campaign) and campaign.approved_by is None
    return result


def _members(session: Session, campaign: Campaign, size: int) -> Any:
    if campaign.snapshot_id:
        yield from audiences.stream_snapshot(session, snapshot_id=campaign.snapshot_id, chunk_size=size)
        return
    after = None
    while True:
        part = audiences.page_members(session, segment_id=campaign.segment_id, after=after, limit=size)
        if not part:
            return
        yield part
        after = part[-1]


def test_send(session: Session, *, campaign_id: str, actor: str, customer_ids: list[str],
              seeds: list[str] | None = None) -> list[dict[str, Any]]:
    """Render each variant for chosen real customers and send it to the seed addresses (internal
    people), archived as tests; the customers themselves are not contacted and nothing counts
    against their caps. Sending happens when the caller commits; the returned rows then show the
    provider's answers."""
    campaign = get_campaign(session, campaign_id)
    seeds = list(seeds or campaign.seeds or [])
    if not seeds:
        raise _invalid("seeds", "give at least one seed address (e-mail or phone)")
    if not customer_ids or len(customer_ids) > 10 or len(seeds) > 20:
        raise _invalid("customer_ids", "render for 1 to 10 customers, to at most 20 seeds")
    sent: list[dict[str, Any]] = []
    outgoing: list[tuple[dict[str, Any], OutgoingMessage]] = []
    for variant in campaign.variants:
        for cid in customer_ids:
            customer = customers.get_customer(session, cid)
            for seed in seeds:
                channel = "email" if "@" in seed else ("sms" if "sms" in campaign.channels else campaign.channels[0])
                found = content.render_many(session, communication_id=variant["communication_id"],
                                            version_id=variant.get("version_id"), items=[(customer.id, channel)],
                                            data=campaign.data).get(customer.id)
                if found is None:
                    raise _invalid("customer_ids", f"could not render {variant['key']} for {customer.id}")
                mid = new_id("tst")
                parts = dict(found.parts)
                if "subject" in parts:
                    parts["subject"] = f"[TEST {variant['key']}] {parts['subject']}"
                archive.record(session, customer_id=customer.id, communication_id=found.communication_id,
                               version_id=found.version_id, channel=channel, language=found.language, recipient=seed,
                               parts=parts, message_id=mid, is_test=True,
                               decision={"test_send": True, "campaign_id": campaign.id, "variant": variant["key"]})
                row = {"message_id": mid, "variant": variant["key"], "customer_id": customer.id, "seed": seed,
                       "channel": channel, "outcome": "pending", "error": None}
                sent.append(row)
                outgoing.append((row, OutgoingMessage(message_id=mid, channel=channel, recipient=seed, parts=parts,
                                                      customer_id=customer.id, language=found.language,
                                                      metadata={"test": True, "campaign": campaign.id})))
    audit.record(session, actor=actor, action="campaign.test_send", object_type="campaign", object_id=campaign.id,
                 customers=customer_ids, seeds=seeds, messages=len(sent))

    def send_all() -> None:
        for row, message in outgoing:
            try:
                result = registry.adapter_for(message.channel).send(message)
            except Exception as exc:  # a test send reports; it never breaks the request that asked
                result = ProviderResult.refused(f"{type(exc).__name__}: {exc}")
            row["outcome"], row["error"] = result.outcome, result.error
    on_commit(session, send_all)
    return sent


# -- launching and controlling --------------------------------------------------------------------


def launch(session: Session, *, campaign_id: str, actor: str) -> Campaign:
    """Freeze the segment (a snapshot), copy its members into the recipients in one INSERT … SELECT
    and start (or schedule) the run. Marketing campaigns must be approved first."""
    campaign = get_campaign(session, campaign_id)
    if campaign.state != "draft":
        raise CampaignStateConflict(f"a {campaign.state} campaign cannot be launched", details={"state": campaign.state})
    if needs_approval(campaign) and campaign.approved_by is None:
        raise ApprovalRequired("a marketing campaign must be approved by another person before it is sent")
    snapshot = audiences.take_snapshot(session, segment_id=campaign.segment_id, actor=actor)
    members = audiences.snapshot_members_query(snapshot_id=snapshot.id)
    chosen = members.with_only_columns(literal(campaign.id), members.selected_columns[0], literal("pending"),
                                       maintain_column_froms=True)
    session.execute(insert(CampaignRecipient).from_select(["campaign_id", "customer_id", "state"], chosen))
    campaign.snapshot_id = snapshot.id
    campaign.recipients_total = snapshot.member_count
    now = utcnow()
    due = campaign.send_at if campaign.schedule == "at" and campaign.send_at and campaign.send_at > now else None
    campaign.state = "scheduled" if due else "running"
    campaign.started_at = None if due else now
    campaign.updated_at = now
    audit.record(session, actor=actor, action="campaign.launch", object_type="campaign", object_id=campaign.id,
                 snapshot_id=snapshot.id, recipients=snapshot.member_count, state=campaign.state)
    _enqueue_after_commit(session, campaign.id, due)
    attribution.forget_active_after_commit(session)  # its conversions are counted from the first message on
    return campaign


def _enqueue_after_commit(session: Session, campaign_id: str, eta: datetime | None) -> None:
    from trato.campaigns import tasks

    on_commit(session, lambda: tasks.start(campaign_id, eta))


def pause(session: Session, *, campaign_id: str, actor: str) -> Campaign:
    """Stop after the chunk in hand; nothing more is sent until it is resumed."""
    return _move(session, campaign_id, actor, "pause", ("running", "scheduled"), "paused")


def resume(session: Session, *, campaign_id: str, actor: str) -> Campaign:
    """Go on from where it stopped (recipients already processed are never processed again)."""
    campaign = _move(session, campaign_id, actor, "resume", ("paused",), "running")
    campaign.started_at = campaign.started_at or utcnow()
    _enqueue_after_commit(session, campaign.id, None)
    return campaign


def cancel(session: Session, *, campaign_id: str, actor: str) -> Campaign:
    """Stop for good: recipients not yet processed are not contacted."""
    campaign = _move(session, campaign_id, actor, "cancel", ("draft", "scheduled", "running", "paused"), "cancelled")
    campaign.finished_at = utcnow()
    return campaign


def _move(session: Session, campaign_id: str, actor: str, action: str, allowed: tuple[str, ...],
          state: str) -> Campaign:
    campaign = session.get(Campaign, campaign_id, with_for_update=True) or get_campaign(session, campaign_id)
    if campaign.state not in allowed:
        raise CampaignStateConflict(f"a {campaign.state} campaign cannot {action}; only {', '.join(allowed)}",
                                    details={"state": campaign.state})
    previous = campaign.state
    campaign.state, campaign.updated_at = state, utcnow()
    audit.record(session, actor=actor, action=f"campaign.{action}", object_type="campaign", object_id=campaign.id,
                 previous=previous)
    return campaign


def progress(session: Session, *, campaign_id: str) -> dict[str, Any]:
    """How far the campaign is: recipients per state, processed of total, rate per second and ETA."""
    campaign = get_campaign(session, campaign_id)
    states = dict(session.execute(select(CampaignRecipient.state, func.count()).where(
        CampaignRecipient.campaign_id == campaign.id).group_by(CampaignRecipient.state)).all())
    elapsed = ((campaign.finished_at or utcnow()) - campaign.started_at).total_seconds() if campaign.started_at else 0
    rate = campaign.processed / elapsed if elapsed > 0 else 0.0
    left = max(0, campaign.recipients_total - campaign.processed)
    return {"campaign_id": campaign.id, "state": campaign.state, "total": campaign.recipients_total,
            "processed": campaign.processed, "states": states, "rate": round(rate, 1),
            "eta_seconds": round(left / rate) if rate > 0 and campaign.state == "running" else None}


# -- the queued work ------------------------------------------------------------------------------


def run(campaign_id: str, *, max_chunks: int | None = None, stale: timedelta | None = None) -> str:
    """Process the campaign chunk by chunk until it is done, paused, cancelled or has to wait
    (throttle, local times, deferrals: then it schedules itself). Safe to run twice, on several
    workers at once and after a crash; "busy" when the campaign has as many runs as may go at once
    (see :mod:`trato.campaigns.runner`). ``stale``: how long a message must have been ``sending``
    to be taken for a stopped worker's (``TRATO_CAMPAIGN_STALE_SECONDS``)."""
    return runner.run(campaign_id, max_chunks=max_chunks, stale=stale)


def running_ids(session: Session) -> list[str]:
    """Campaigns that are running, or scheduled and due: what the sweep queues again."""
    now = utcnow()
    return list(session.scalars(select(Campaign.id).where(
        (Campaign.state == "running") | ((Campaign.state == "scheduled") & (Campaign.send_at <= now)))))


@delivery.provide_data("campaign:")
def _campaign_data(session: Session, campaign_id: str) -> dict[str, Any] | None:
    """A campaign message's template data: its campaign's, kept once there (see ``pipeline``)."""
    campaign = session.get(Campaign, campaign_id)
    return dict(campaign.data or {}) if campaign is not None else None
