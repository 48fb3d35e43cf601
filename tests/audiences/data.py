"""Random customer memories and condition trees for the segment tests (hypothesis strategies), and
writing a memory into the real database."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from tests.audiences.oracle import World
from trato.customers.computed import rollup_name

NOW = datetime(2026, 2, 26, 15, 30, 0, tzinfo=timezone.utc)  # near the end of a non-leap February
TEXTS = ["Madrid", "Sevilla", "madrid", "Mad", "Ávila", "zeta", ""]
TRAIT_KEYS = ["city", "age", "vip", "since", "address"]
EVENT_NAMES = ["Viewed", "Added", "Order Completed", "page:Home", "identify"]
STATIC, DYNAMIC = "seg_STATIC", "seg_DYNAMIC"

scalar = st.one_of(st.sampled_from(TEXTS), st.integers(-3, 40), st.sampled_from([0.5, 2.0, 40.0]), st.booleans())
trait_value = st.one_of(
    scalar, st.none(), st.sampled_from(["2025-03-01", "1990-02-28", "1992-02-29T08:00:00Z", "2026-02-20", "bad"]),
    st.sampled_from([{"street": "Gran Vía 1"}, {}]),
)
day = st.dates(date(1960, 1, 1), date(2026, 3, 10))
instant = st.integers(-12 * 86400, 2 * 86400).map(lambda s: NOW - timedelta(seconds=s))


@st.composite
def worlds(draw: Any) -> World:
    world = World(now=NOW)
    n = draw(st.integers(3, 9))
    ids = [f"cus_{i:02d}" for i in range(n)]
    for i, cid in enumerate(ids):
        merged = draw(st.sampled_from([None, None, None, *ids[:i]])) if i else None
        traits = {k: v for k in TRAIT_KEYS if (v := draw(trait_value)) is not None}
        world.customers.append({
            "id": cid, "merged_into_id": merged, "traits": traits,
            "first_name": draw(st.sampled_from(["Ana", "Luis", "ana", None])),
            "country": draw(st.sampled_from(["ES", "MX", None])),
            "birthday": draw(st.one_of(st.none(), day)), "customer_since": draw(st.one_of(st.none(), day)),
            "first_seen_at": draw(st.one_of(st.none(), instant)),
            "event_count": draw(st.integers(0, 5)), "purchase_count": draw(st.integers(0, 2)),
            "last_channel": draw(st.sampled_from(["email", "sms", None])),
        })
        for kind in draw(st.sets(st.sampled_from(["email", "phone", "device_token", "user_id"]))):
            world.identities.append((cid, kind, f"{kind}-{cid}@x"))
        for _ in range(draw(st.integers(0, 6))):
            name = draw(st.sampled_from(EVENT_NAMES))
            kind, ev = ("page", "Home") if name == "page:Home" else ("identify", None) if name == "identify" else (
                "purchase" if name == "Order Completed" else "track", name)
            world.events.append({
                "customer_id": cid, "kind": kind, "name": ev, "occurred_at": draw(instant),
                "properties": {k: v for k in ("product", "price") if (v := draw(st.one_of(
                    st.none(), st.sampled_from(["X", "Y"]), st.integers(0, 5)))) is not None},
            })
        if draw(st.booleans()):
            world.revenue.append((cid, "EUR", draw(st.integers(0, 5000))))
        for channel, purpose in draw(st.sets(st.tuples(st.sampled_from(["email", "sms"]),
                                                       st.sampled_from(["marketing", "service"])), max_size=3)):
            world.consents.append((cid, channel, purpose, draw(st.sampled_from(["granted", "denied", "pending"]))))
    addresses = [("customer", cid) for cid in ids] + [(k, v) for _, k, v in world.identities if k in ("email", "phone")]
    for _ in range(draw(st.integers(0, 3))):
        kind, value = draw(st.sampled_from(addresses))
        world.suppressions.append({
            "kind": kind, "value": value, "channel": draw(st.sampled_from([None, "email", "sms"])),
            "purpose": draw(st.sampled_from([None, "marketing"])),
            "expires_at": draw(st.sampled_from([None, NOW - timedelta(days=1), NOW + timedelta(days=1)])),
        })
    world.segments[STATIC] = ("static", None)
    world.lists[STATIC] = set(draw(st.sets(st.sampled_from(ids))))
    world.segments[DYNAMIC] = ("dynamic", {"type": "trait", "trait": "city", "op": "eq", "value": "Madrid"})
    return world


value_ops = st.sampled_from(["eq", "ne", "contains", "in", "gt", "gte", "lt", "lte", "between", "exists",
                             "not_exists"])


@st.composite
def value_test(draw: Any) -> dict[str, Any]:
    op = draw(value_ops)
    if op in ("exists", "not_exists"):
        return {"op": op}
    if op == "in":
        return {"op": op, "values": draw(st.lists(scalar, min_size=1, max_size=3))}
    if op == "between":
        low = draw(st.integers(-3, 20))
        return {"op": op, "values": [low, low + draw(st.integers(0, 20))]}
    if op == "contains":
        return {"op": op, "value": draw(st.sampled_from(["ad", "Mad", "a", "Á"]))}
    if op in ("gt", "gte", "lt", "lte"):
        return {"op": op, "value": draw(st.one_of(st.integers(-3, 40), st.sampled_from(["Madrid", "M", "a"])))}
    return {"op": op, "value": draw(scalar)}


@st.composite
def leaf(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["trait", "date", "identity", "computed", "event", "sequence", "consent",
                                 "reachable", "segment"]))
    if kind == "trait":
        return {"type": "trait", "trait": draw(st.sampled_from([*TRAIT_KEYS, "first_name", "country"])),
                **draw(value_test())}
    if kind == "date":
        return {"type": "date", "field": draw(st.sampled_from(["birthday", "customer_since", "first_seen_at", "since"])),
                "op": draw(st.sampled_from(["more_than_days_ago", "less_than_days_ago", "anniversary_in_next_days"])),
                "days": draw(st.integers(0, 40))}
    if kind == "identity":
        return {"type": "identity", "kind": draw(st.sampled_from(["email", "phone", "user_id"])),
                "present": draw(st.booleans())}
    if kind == "computed":
        field = draw(st.sampled_from(["event_count", "purchase_count", "last_channel", "lifetime_value_cents"]))
        if field == "last_channel":
            return {"type": "computed", "field": field, "op": draw(st.sampled_from(["eq", "ne"])),
                    "value": draw(st.sampled_from(["email", "sms"]))}
        node = {"type": "computed", "field": field, "op": draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"])),
                "value": draw(st.integers(0, 3000) if field == "lifetime_value_cents" else st.integers(0, 5))}
        if field == "lifetime_value_cents":
            node["currency"] = "EUR"
        return node
    if kind == "event":
        node = {"type": "event", "name": draw(st.sampled_from(EVENT_NAMES)), "performed": draw(st.booleans()),
                "count_op": draw(st.sampled_from(["gte", "lte", "eq"])), "count": draw(st.integers(0, 3))}
        window = draw(st.sampled_from(["days", "hours", None]))
        if window == "days":
            node["within_days"] = draw(st.integers(1, 14))
        elif window == "hours":
            node["within_hours"] = draw(st.integers(1, 72))
        if draw(st.booleans()):
            node["where"] = [{"property": draw(st.sampled_from(["product", "price"])), **draw(value_test())}]
        return node
    if kind == "sequence":
        first, then = draw(st.lists(st.sampled_from(EVENT_NAMES), min_size=2, max_size=2, unique=True))
        return {"type": "sequence", "first": first, "then_not": then, "within_hours": draw(st.integers(1, 100)),
                "since_days": draw(st.integers(1, 14))}
    if kind == "consent":
        return {"type": "consent", "channel": draw(st.sampled_from(["email", "sms"])),
                "purpose": draw(st.sampled_from(["marketing", "service"])),
                "state": draw(st.sampled_from(["granted", "denied", "pending"]))}
    if kind == "reachable":
        node = {"type": "reachable", "channel": draw(st.sampled_from(["email", "sms", "push", "web", "letter"]))}
        if draw(st.booleans()):
            node["purpose"] = "marketing"
        return node
    return {"type": "segment", "segment_id": draw(st.sampled_from([STATIC, DYNAMIC])), "member": draw(st.booleans())}


trees = st.recursive(
    leaf(),
    lambda children: st.one_of(
        st.builds(lambda t, cs: {"type": t, "conditions": cs}, st.sampled_from(["and", "or"]),
                  st.lists(children, min_size=1, max_size=3)),
        children.map(lambda ch: {"type": "not", "condition": ch}),
    ),
    max_leaves=6,
)


def store(world: World) -> None:
    """Write the memory into the database, straight into its tables."""
    from sqlalchemy import insert, update

    from trato.audiences.models import Segment, SegmentListMember
    from trato.core.db import unit_of_work
    from trato.customers.models import Customer, CustomerRevenue, Event, EventRollup, Identity
    from trato.policy.models import Consent, Suppression

    with unit_of_work() as s:
        s.execute(insert(Customer), [{
            **{k: v for k, v in x.items() if k != "merged_into_id"}, "trait_times": {},
            "created_at": NOW, "updated_at": NOW,
        } for x in world.customers])
        for x in world.customers:
            if x["merged_into_id"]:
                s.execute(update(Customer).where(Customer.id == x["id"]).values(merged_into_id=x["merged_into_id"]))
        if world.identities:
            s.execute(insert(Identity), [{"customer_id": cid, "origin_customer_id": cid, "kind": k, "value": v,
                                          "linked_via": "api", "created_at": NOW} for cid, k, v in world.identities])
        if world.events:
            s.execute(insert(Event), [{
                "customer_id": e["customer_id"], "origin_customer_id": e["customer_id"], "source_id": "src",
                "message_id": f"m{i}", "kind": e["kind"], "name": e["name"], "occurred_at": e["occurred_at"],
                "received_at": NOW, "properties": e["properties"], "context": {},
            } for i, e in enumerate(world.events)])
            rollups: dict[tuple[str, str, date], int] = {}
            for e in world.events:
                key = (e["customer_id"], rollup_name(e["kind"], e["name"]), e["occurred_at"].date())
                rollups[key] = rollups.get(key, 0) + 1
            s.execute(insert(EventRollup), [{"customer_id": cid, "name": n, "day": d, "count": k}
                                            for (cid, n, d), k in rollups.items()])
        if world.revenue:
            s.execute(insert(CustomerRevenue), [{"customer_id": cid, "currency": cur, "cents": cents}
                                                for cid, cur, cents in world.revenue])
        if world.consents:
            s.execute(insert(Consent), [{"customer_id": cid, "channel": ch, "purpose": p, "topic": "", "state": st_,
                                         "source": "api", "updated_at": NOW} for cid, ch, p, st_ in world.consents])
        for i, sup in enumerate(world.suppressions):
            s.add(Suppression(id=f"sup_{i}", value_hash=f"h{i}", reason="manual", actor="test", created_at=NOW, **sup))
        for sid, (kind, definition) in world.segments.items():
            s.add(Segment(id=sid, name=sid, description="", kind=kind, definition=definition, created_by="test",
                          created_at=NOW, updated_at=NOW))
        s.flush()
        for sid, ids in world.lists.items():
            for cid in ids:
                s.add(SegmentListMember(segment_id=sid, customer_id=cid))
