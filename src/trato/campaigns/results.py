"""What a campaign did: tracking (opens, clicks, unsubscribes from signed links), conversions
attributed to campaign and variant, and results per variant and channel with the holdout
comparison (two-proportion z-test)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, literal_column, or_, select
from sqlalchemy.orm import Session

from trato.campaigns.attribution import LONGEST_WINDOW, count_event
from trato.campaigns.models import ATTRIBUTED, CONTACTED, CONVERSION_KINDS, Campaign, CampaignEvent, CampaignRecipient
from trato.core.clock import as_utc, utcnow
from trato.core.settings import get_settings
from trato.customers import service as customers
from trato.delivery.bulk import MESSAGES
from trato.policy import links
from trato.policy.errors import BadLink, ExpiredLink

KIND_OF_LINK = {"o": "opened", "c": "clicked", "u": "unsubscribed"}
# Delivery states that count as sent, delivered, bounced.
SENT_STATES = ("accepted", "delivered", "read", "bounced", "possibly_sent")
DELIVERED_STATES = ("delivered", "read")


def track(session: Session, payload: dict[str, Any]) -> str | None:
    """A followed tracking link (its payload already verified): records it; returns where to go."""
    if session.get(Campaign, payload["m"]) is None:
        return None
    kind = KIND_OF_LINK.get(payload["k"])
    if kind is None:
        return None
    common = {"campaign_id": payload["m"], "customer_id": payload["c"], "variant": payload.get("v"),
              "channel": payload.get("ch")}
    if kind != "opened":  # a click shows the message was opened, images shown or not
        count_event(session, kind="opened", **common)
    if kind == "unsubscribed" and _names_its_message(payload.get("u")):
        # The unsubscribe page it leads to counts the unsubscribe when the customer makes it (the link
        # carries its message); following the link only asks. Older links, without the message, count here.
        return payload.get("u")
    count_event(session, kind=kind, url=payload.get("u"), **common)
    return payload.get("u")


def _names_its_message(url: str | None) -> bool:
    prefix = f"{get_settings().base_url}{links.PATHS['unsubscribe']}"
    if not url or not url.startswith(prefix):
        return False
    try:
        return links.message_of(links.read_token("unsubscribe", url[len(prefix):])) is not None
    except (BadLink, ExpiredLink):
        return False


def attribute_conversions(session: Session, *, campaign_id: str, batch: int = 1000) -> int:
    """Recipients (and holdout members) who did the campaign's conversion event within its window
    after being processed: each counted once for the campaign and their variant. Returns how many were new."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or not campaign.conversion_event:
        return 0
    window = timedelta(days=campaign.conversion_days)
    r, e = CampaignRecipient, customers.Event
    done = select(CampaignEvent.customer_id).where(CampaignEvent.campaign_id == campaign.id,
                                                   CampaignEvent.kind == "converted")
    new, after = 0, 0
    while True:
        rows = session.execute(select(r.id, r.customer_id, r.variant, r.channel, r.processed_at).where(
            r.campaign_id == campaign.id, r.id > after, r.state.in_(ATTRIBUTED),
            r.processed_at.is_not(None), r.customer_id.not_in(done)).order_by(r.id).limit(batch)).all()
        if not rows:
            return new
        after = rows[-1].id
        start = min(as_utc(x.processed_at) for x in rows)
        # A recipient merged since into another profile: its events are that profile's now.
        holder = customers.current_profiles(session, [x.customer_id for x in rows])
        hits: dict[str, list[Any]] = {}
        for cid, at in session.execute(select(e.customer_id, e.occurred_at).where(
                e.customer_id.in_(sorted(set(holder.values()))), e.kind.in_(CONVERSION_KINDS),
                e.name == campaign.conversion_event, e.occurred_at >= start)):
            hits.setdefault(cid, []).append(as_utc(at))
        for x in rows:
            since = as_utc(x.processed_at)
            if any(since <= at < since + window for at in hits.get(holder[x.customer_id], [])):
                new += count_event(session, campaign_id=campaign.id, customer_id=x.customer_id, variant=x.variant,
                              channel=x.channel, kind="converted")


def z_test(converted_a: int, n_a: int, converted_b: int, n_b: int) -> dict[str, float | None]:
    """Two-proportion z-test of A against B: z and the two-sided p-value (None without data)."""
    if n_a == 0 or n_b == 0:
        return {"z": None, "p_value": None}
    pooled = (converted_a + converted_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return {"z": 0.0, "p_value": 1.0}
    z = (converted_a / n_a - converted_b / n_b) / se
    return {"z": round(z, 4), "p_value": round(math.erfc(abs(z) / math.sqrt(2)), 6)}


def results(session: Session, *, campaign_id: str) -> dict[str, Any]:
    """Sent, delivered, bounced, opened, clicked, converted, unsubscribed per variant and channel;
    conversion per variant against the holdout with its significance."""
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None
    r = CampaignRecipient
    rows: dict[tuple[str, str], dict[str, int]] = {}

    def row(variant: str | None, channel: str | None) -> dict[str, int]:
        return rows.setdefault((variant or "-", channel or "-"), {
            "recipients": 0, "sent": 0, "delivered": 0, "bounced": 0, "failed": 0, "opened": 0, "clicked": 0,
            "converted": 0, "unsubscribed": 0})

    joined = select(r.variant, r.channel, MESSAGES.c.state, func.count()).select_from(
        r.__table__.join(MESSAGES, MESSAGES.c.id == r.message_id)).where(
        r.campaign_id == campaign.id).group_by(r.variant, r.channel, MESSAGES.c.state)
    for variant, channel, state, n in session.execute(joined):
        target = row(variant, channel)
        target["recipients"] += n
        target["sent"] += n if state in SENT_STATES else 0
        target["delivered"] += n if state in DELIVERED_STATES else 0
        target["bounced"] += n if state == "bounced" else 0
        target["failed"] += n if state in ("failed", "dead") else 0
    for variant, channel, kind, n in session.execute(
            select(CampaignEvent.variant, CampaignEvent.channel, CampaignEvent.kind, func.count()).where(
                CampaignEvent.campaign_id == campaign.id, CampaignEvent.variant != "holdout")
            .group_by(CampaignEvent.variant, CampaignEvent.channel, CampaignEvent.kind)):
        row(variant, channel)[kind] += n
    groups = dict(session.execute(select(r.variant, func.count()).where(
        r.campaign_id == campaign.id, r.variant.is_not(None), r.state != "pending").group_by(r.variant)).all())
    contacted = dict(session.execute(select(r.variant, func.count()).where(
        r.campaign_id == campaign.id, r.state.in_(CONTACTED)).group_by(r.variant)).all())
    converted = dict(session.execute(select(CampaignEvent.variant, func.count()).where(
        CampaignEvent.campaign_id == campaign.id, CampaignEvent.kind == "converted").group_by(
        CampaignEvent.variant)).all())
    holdout_n, holdout_c = groups.get("holdout", 0), converted.get("holdout", 0)
    variants = []
    for v in campaign.variants:
        key = v["key"]
        n, c = contacted.get(key, 0), converted.get(key, 0)
        variants.append({"variant": key, "communication": v.get("communication"), "assigned": groups.get(key, 0),
                         "contacted": n, "converted": c, "conversion_rate": round(c / n, 6) if n else None,
                         "lift": round(c / n - holdout_c / holdout_n, 6) if n and holdout_n else None,
                         **z_test(c, n, holdout_c, holdout_n)})
    return {
        "campaign_id": campaign.id, "state": campaign.state, "conversion_event": campaign.conversion_event,
        "conversion_days": campaign.conversion_days,
        "by_variant_channel": [{"variant": k[0], "channel": k[1], **v} for k, v in sorted(rows.items())],
        "variants": variants,
        "holdout": {"members": holdout_n, "converted": holdout_c,
                    "conversion_rate": round(holdout_c / holdout_n, 6) if holdout_n else None},
        "over_time": _over_time(session, campaign.id),
    }


def _over_time(session: Session, campaign_id: str) -> list[dict[str, Any]]:
    """Messages processed and first opens and clicks per hour (UTC)."""
    dialect = session.get_bind().dialect.name

    def hour(column: Any) -> Any:
        if dialect == "postgresql":
            # Constants inlined: GROUP BY must repeat the very expression, not new parameters.
            return func.to_char(func.timezone(literal_column("'UTC'"), column),
                                literal_column("'YYYY-MM-DD\"T\"HH24:00'"))
        return func.strftime(literal_column("'%Y-%m-%dT%H:00'"), column)

    found: dict[str, dict[str, Any]] = {}
    r = CampaignRecipient
    for at, n in session.execute(select(hour(r.processed_at), func.count()).where(
            r.campaign_id == campaign_id, r.state.in_(CONTACTED)).group_by(hour(r.processed_at))):
        if at:
            found.setdefault(at, {"hour": at, "sent": 0, "opened": 0, "clicked": 0})["sent"] = n
    for at, kind, n in session.execute(select(hour(CampaignEvent.at), CampaignEvent.kind, func.count()).where(
            and_(CampaignEvent.campaign_id == campaign_id, CampaignEvent.kind.in_(("opened", "clicked"))))
            .group_by(hour(CampaignEvent.at), CampaignEvent.kind)):
        if at:
            found.setdefault(at, {"hour": at, "sent": 0, "opened": 0, "clicked": 0})[kind] = n
    return [found[k] for k in sorted(found)]


def recent_ids(session: Session) -> list[str]:
    """Campaigns whose conversions may still come: launched, with a conversion event, and running
    or finished less than their conversion window ago (up to 90 days)."""
    now = utcnow()
    return [campaign_id for campaign_id, days, finished in session.execute(
        select(Campaign.id, Campaign.conversion_days, Campaign.finished_at).where(
            Campaign.conversion_event.is_not(None), Campaign.started_at.is_not(None),
            or_(Campaign.finished_at.is_(None), Campaign.finished_at >= now - LONGEST_WINDOW)))
        if finished is None or as_utc(finished) + timedelta(days=days) > now]
