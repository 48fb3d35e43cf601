"""A reference evaluator of segment trees in plain Python over in-memory data: the oracle the SQL
compiler is checked against. Written from the conditions' documented meaning, not from the SQL."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Any

from trato.audiences import conditions as c
from trato.audiences.compiler import month_days
from trato.customers.computed import rollup_name


@dataclass
class World:
    now: datetime
    customers: list[dict[str, Any]] = field(default_factory=list)
    identities: list[tuple[str, str, str]] = field(default_factory=list)  # customer, kind, value
    events: list[dict[str, Any]] = field(default_factory=list)  # customer_id, kind, name, occurred_at, properties
    revenue: list[tuple[str, str, int]] = field(default_factory=list)
    consents: list[tuple[str, str, str, str]] = field(default_factory=list)  # customer, channel, purpose, state
    suppressions: list[dict[str, Any]] = field(default_factory=list)  # kind, value, channel, purpose, expires_at
    segments: dict[str, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)
    lists: dict[str, set[str]] = field(default_factory=dict)

    def customer(self, cid: str) -> dict[str, Any]:
        return next(x for x in self.customers if x["id"] == cid)

    def owners(self, cid: str) -> set[str]:
        """The profile and every profile merged into it, through chains."""
        found, frontier = {cid}, [cid]
        while frontier:
            frontier = [x["id"] for x in self.customers if x["merged_into_id"] in frontier and x["id"] not in found]
            found.update(frontier)
        return found


def members(world: World, tree: Any) -> set[str]:
    return {x["id"] for x in world.customers if x["merged_into_id"] is None and holds(world, tree, x)}


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _eq(v: Any, test: Any) -> bool:
    if isinstance(test, bool):
        return isinstance(v, bool) and v == test
    if _is_number(test):
        return _is_number(v) and v == test
    return isinstance(v, str) and v == test


def value_test(v: Any, node: Any) -> bool:
    op = node.op
    if op == "exists":
        return v is not None
    if op == "not_exists":
        return v is None
    if op == "eq":
        return _eq(v, node.value)
    if op == "ne":
        return not _eq(v, node.value)
    if op == "in":
        return any(_eq(v, t) for t in node.values)
    if op == "contains":
        return isinstance(v, str) and node.value in v
    if op == "between":
        return _is_number(v) and node.values[0] <= v <= node.values[1]
    if _is_number(node.value):
        if not _is_number(v):
            return False
    elif not isinstance(v, str):
        return False
    else:  # text compares in code point order (bytes of UTF-8 in the databases)
        v, w = v.encode(), node.value.encode()
        return {"gt": v > w, "gte": v >= w, "lt": v < w, "lte": v <= w}[op]
    w = node.value
    return {"gt": v > w, "gte": v >= w, "lt": v < w, "lte": v <= w}[op]


def holds(world: World, node: Any, x: dict[str, Any]) -> bool:
    now, today = world.now, world.now.date()
    if isinstance(node, c.Group):
        results = [holds(world, child, x) for child in node.conditions]
        return all(results) if node.type == "and" else any(results)
    if isinstance(node, c.Not):
        return not holds(world, node.condition, x)
    if isinstance(node, c.Trait):
        v = x.get(node.trait) if node.trait in c.TEXT_COLUMNS else x["traits"].get(node.trait)
        return value_test(v, node)
    if isinstance(node, c.DateCondition):
        if node.field in c.DATE_COLUMNS or node.field in c.DATETIME_COLUMNS:
            v = x.get(node.field)
            if v is None:
                return False
            is_dt = node.field in c.DATETIME_COLUMNS
            if node.op == "anniversary_in_next_days":
                d = v.astimezone(timezone.utc).date() if is_dt else v
                return d.strftime("%m-%d") in month_days(today, node.days)
            bound = now - timedelta(days=node.days) if is_dt else today - timedelta(days=node.days)
            return v < bound if node.op == "more_than_days_ago" else v >= bound
        v = x["traits"].get(node.field)
        if not isinstance(v, str) or not re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}", v):
            return False
        if node.op == "anniversary_in_next_days":
            return v[5:10] in month_days(today, node.days)
        bound_text = (today - timedelta(days=node.days)).isoformat()
        return v[:10] < bound_text if node.op == "more_than_days_ago" else v[:10] >= bound_text
    if isinstance(node, c.IdentityCondition):
        has = any(cid == x["id"] and kind == node.kind for cid, kind, _ in world.identities)
        return has == node.present
    if isinstance(node, c.Computed):
        if node.field == "lifetime_value_cents":
            v = sum(cents for cid, cur, cents in world.revenue if cid == x["id"] and cur == node.currency)
        else:
            v = x.get(node.field)
        if v is None:
            return node.op == "ne"
        w = node.value
        return {"eq": v == w, "ne": v != w, "gt": v > w, "gte": v >= w, "lt": v < w, "lte": v <= w}[node.op]
    if isinstance(node, c.EventCondition):
        if node.within_hours is not None:
            start = now - timedelta(hours=node.within_hours)
        elif node.within_days is not None:
            start = datetime.combine(today - timedelta(days=node.within_days - 1), time(), tzinfo=timezone.utc)
        else:
            start = None
        n = sum(1 for e in world.events if e["customer_id"] == x["id"]
                and rollup_name(e["kind"], e["name"]) == node.name
                and (start is None or e["occurred_at"] >= start)
                and all(value_test(e["properties"].get(f.property), f) for f in node.where))
        if not node.performed:
            return n == 0
        return {"gte": n >= node.count, "lte": n <= node.count, "eq": n == node.count}[node.count_op]
    if isinstance(node, c.Sequence):
        since = datetime.combine(today - timedelta(days=node.since_days - 1), time(), tzinfo=timezone.utc)
        window = timedelta(hours=node.within_hours)
        mine = [e for e in world.events if e["customer_id"] == x["id"]]
        for a in mine:
            if rollup_name(a["kind"], a["name"]) != node.first or not since <= a["occurred_at"] <= now - window:
                continue
            if not any(rollup_name(b["kind"], b["name"]) == node.then_not
                       and a["occurred_at"] <= b["occurred_at"] <= a["occurred_at"] + window for b in mine):
                return True
        return False
    if isinstance(node, c.ConsentCondition):
        owners = world.owners(x["id"])
        return any(cid in owners and ch == node.channel and p == node.purpose and st == node.state
                   for cid, ch, p, st in world.consents)
    if isinstance(node, c.Reachable):
        kinds = {"email": ["email"], "sms": ["phone"], "whatsapp": ["phone"], "voice": ["phone"],
                 "push": ["device_token"], "web": ["user_id", "anonymous_id"]}.get(node.channel)
        mine = [(k, v) for cid, k, v in world.identities if cid == x["id"]]
        if kinds is None:
            address = x["traits"].get("address")
            has = isinstance(address, str | dict) and bool(address)
        else:
            has = any(k in kinds for k, _ in mine)
        if not has:
            return False
        for s in world.suppressions:
            active = ((s["expires_at"] is None or s["expires_at"] > now)
                      and (s["channel"] is None or s["channel"] == node.channel)
                      and (s["purpose"] is None or (node.purpose is not None and s["purpose"] == node.purpose)))
            if not active:
                continue
            if s["kind"] == "customer" and s["value"] == x["id"]:
                return False
            if s["kind"] in ("email", "phone") and kinds == [s["kind"]] and (s["kind"], s["value"]) in mine:
                return False
        return True
    if isinstance(node, c.Membership):
        kind, definition = world.segments[node.segment_id]
        if kind == "static":
            owners = world.owners(x["id"])
            found = bool(owners & world.lists.get(node.segment_id, set()))
        else:
            found = holds(world, c.parse(definition), x)
        return found == node.member
    raise AssertionError(f"no oracle for {node!r}")
