"""The demo company: reproducible, realistic, loaded through the real write path, loadable twice."""

from __future__ import annotations

import base64
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import phonenumbers
import pytest
from sqlalchemy import func, select

from tests.database import empty_database
from trato.customers.models import Customer, CustomerMerge, Event, Identity
from trato.demo import batches as demo_batches
from trato.demo.people import Population
from trato.demo.service import load_demo

RESERVED_DOMAINS = ("example.com", "example.org", "example.net")
ZONES = {
    "ES": {"Europe/Madrid", "Atlantic/Canary"},
    "MX": {"America/Mexico_City", "America/Monterrey", "America/Merida", "America/Cancun", "America/Tijuana"},
    "US": {"America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles"},
    "GB": {"Europe/London"},
}
LOCALES = {"ES": "es-ES", "MX": "es-MX", "US": "en-US", "GB": "en-GB"}
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
ANCHOR = date(2025, 6, 1)


def _reserved(address: str) -> bool:
    domain = address.rsplit("@", 1)[1]
    return any(domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS)


def _empty() -> None:
    empty_database()


def _counts(session: Any) -> dict[str, int]:
    tables = {"customers": Customer, "identities": Identity, "events": Event, "merges": CustomerMerge}
    return {name: session.scalar(select(func.count()).select_from(model)) for name, model in tables.items()}


def canonical(session: Any) -> dict[str, Any]:
    """Everything the demo wrote, keyed by customer number instead of trato's generated ids."""
    from trato.customers import service as customers_service
    from trato.ingest.models import Source

    source_names = dict(session.execute(select(Source.id, Source.name)).all())
    identities = session.execute(select(Identity.customer_id, Identity.kind, Identity.value)).all()
    number = {cid: value for cid, kind, value in identities if kind == "user_id"}
    held: dict[str, list[tuple[str, str]]] = {}
    for cid, kind, value in identities:
        held.setdefault(number[cid], []).append((kind, value))
    people = {}
    merged: Counter[str] = Counter()
    lifetime = customers_service.lifetime_values(session, customer_ids=list(number))
    for c in session.scalars(select(Customer)):
        if c.merged_into_id:
            merged[number[c.merged_into_id]] += 1
            continue
        people[number[c.id]] = (
            c.first_name, c.last_name, c.email, c.phone, c.locale, c.timezone, c.country, c.birthday,
            c.customer_since, c.traits, c.event_count, c.purchase_count, lifetime.get(c.id),
            c.last_channel, c.first_seen_at, c.last_seen_at, sorted(held[number[c.id]]),
        )
    events = sorted(
        (number[e.customer_id], source_names.get(e.source_id, e.source_id), e.message_id, e.kind, e.name or "",
         e.channel or "", e.department or "", e.occurred_at.isoformat(), e.revenue_cents or 0)
        for e in session.scalars(select(Event))
    )
    merge_log = sorted(
        (m.status, number[m.survivor_id], m.trigger_identity or "", m.reason)
        for m in session.scalars(select(CustomerMerge))
    )
    return {"people": people, "merged": dict(merged), "events": events, "merges": merge_log}


def test_a_loaded_demo_is_a_realistic_company(session, client) -> None:  # type: ignore[no-untyped-def]
    credentials = load_demo(customers=200, seed=7, progress=None)
    anchor = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC)

    people = session.scalars(select(Customer).where(Customer.merged_into_id.is_(None))).all()
    assert len(people) == 200
    surname, last_name = people[0].last_name.split(" ")[0], people[0].last_name
    assert {c.country for c in people} == {"ES", "MX", "US", "GB"}
    assert {c.locale for c in people} == {"es-ES", "es-MX", "en-US", "en-GB"}
    spain = sum(c.country == "ES" for c in people)
    assert 70 <= spain <= 130, "about half the customers live in Spain"
    for c in people:
        assert c.locale == LOCALES[c.country] and c.timezone in ZONES[c.country], c.id
        assert c.first_name and c.last_name and c.birthday and c.customer_since
        assert {"plan", "loyalty_tier", "city", "preferred_channel"} <= set(c.traits)
        if c.country in ("ES", "MX"):
            assert len(c.last_name.split(" ")) >= 2, "Spanish and Mexican customers have two surnames"
        assert c.email is None or _reserved(c.email)
        if c.phone:
            number = phonenumbers.parse(c.phone)
            assert phonenumbers.is_valid_number(number) and E164.match(c.phone)
            assert phonenumbers.region_code_for_number(number) == c.country

    kinds = Counter(session.scalars(select(Identity.kind)))
    assert kinds["user_id"] == 200
    assert {"email", "phone", "anonymous_id", "device_token", "contract_id", "social:instagram"} <= set(kinds)
    for value in session.scalars(select(Identity.value).where(Identity.kind == "email")):
        assert _reserved(value), value
    for value in session.scalars(select(Identity.value).where(Identity.kind == "phone")):
        assert E164.match(value) and phonenumbers.is_valid_number(phonenumbers.parse(value)), value

    merges = Counter(session.scalars(select(CustomerMerge.status)))
    assert merges["merged"] >= 3, "a few percent of the customers were merged from two profiles"
    merged_away = session.scalar(select(func.count()).where(Customer.merged_into_id.is_not(None)))
    assert merged_away == merges["merged"]
    triggers = {m.split(":")[0] for m in session.scalars(select(CustomerMerge.trigger_identity))}
    assert {"email", "anonymous_id"} <= triggers

    first = session.scalar(select(Event.occurred_at).order_by(Event.occurred_at).limit(1))
    last = session.scalar(select(Event.occurred_at).order_by(Event.occurred_at.desc()).limit(1))
    assert anchor - timedelta(days=366) <= first and last < anchor
    assert last - first > timedelta(days=330), "the history spans about a year"
    channels = set(session.scalars(select(Event.channel).distinct()))
    assert {"web", "app", "store", "call_center", "email"} <= channels and channels & {"sms", "whatsapp"}
    # compliance: consent changes (the contact policy's demo consents)
    assert set(session.scalars(select(Event.department).distinct())) == {"sales", "service", "billing", "compliance"}
    events = session.scalar(select(func.count()).select_from(Event))
    assert 25 * 200 <= events <= 40 * 200
    names = set(session.scalars(select(Event.name).distinct()))
    assert {"Product Viewed", "Product Added", "Cart Viewed", "Order Completed", "Signed In", "Support Call",
            "Complaint Filed", "Invoice Issued", "Payment Received", "Note"} <= names
    assert set(session.scalars(select(Event.kind).distinct())) >= {"page", "screen", "purchase", "note",
                                                                  "message_received", "identify"}
    session.rollback()  # SQLite: a session that has read holds the write lock until it ends

    # Loading again adds nothing; it only hands out fresh credentials.
    before = _counts(session)
    session.rollback()
    again = load_demo(customers=200, seed=7, progress=None)
    assert _counts(session) == before
    assert again["admin_password"] == credentials["admin_password"]
    assert again["api_token"] != credentials["api_token"] and again["write_key"] != credentials["write_key"]
    session.rollback()

    # The credentials work: the token reads the API, the write key sends events, the admin signs in.
    for token in (credentials["api_token"], again["api_token"]):
        found = client.get("/api/v1/customers", params={"q": surname}, headers={"Authorization": f"Bearer {token}"})
        assert found.status_code == 200, found.text
        assert any(item["last_name"] == last_name for item in found.json()["items"])
    for key in (credentials["write_key"], again["write_key"]):
        basic = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        sent = client.post("/v1/track", headers={"Authorization": basic}, json={
            "userId": "TD-00000001", "event": "Demo Checked", "timestamp": "2025-01-01T00:00:00Z",
        })
        assert sent.status_code == 200, sent.text
    from trato.console import service as console

    admin = console.authenticate_user(session, email=credentials["admin_email"], password=credentials["admin_password"])
    assert admin.role == "admin"
    session.rollback()


def test_the_same_seed_gives_the_same_company(session) -> None:  # type: ignore[no-untyped-def]
    load_demo(customers=120, seed=11, progress=None, today=ANCHOR)
    first = canonical(session)
    session.rollback()
    _empty()
    load_demo(customers=120, seed=11, progress=None, today=ANCHOR)
    second = canonical(session)
    assert first == second
    assert first["merged"], "the comparison covers merged profiles too"
    assert all(e[7] < "2025-06-01" for e in first["events"])


def test_seeds_give_different_companies_and_people_do_not_depend_on_the_count() -> None:
    anchor = datetime(2025, 6, 1, tzinfo=UTC)
    small = Population(seed=7, anchor=anchor).people(30)
    large = Population(seed=7, anchor=anchor).people(300)
    other = Population(seed=8, anchor=anchor).people(30)
    assert [p.user_id for p in small] == [p.user_id for p in large[:30]]
    assert [(p.first_name, p.email, p.phone) for p in small] == [(p.first_name, p.email, p.phone) for p in large[:30]]
    assert [p.user_id for p in small] != [p.user_id for p in other]
    assert len({p.email for p in large if p.email}) == sum(1 for p in large if p.email)
    assert len({p.phone for p in large if p.phone}) == sum(1 for p in large if p.phone)


def test_a_second_process_makes_the_same_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    anchor = datetime(2025, 6, 1, tzinfo=UTC)
    here = list(demo_batches.batches(customers=40, seed=3, anchor=anchor, size=300))
    monkeypatch.setattr(demo_batches, "PARALLEL_FROM", 0)
    with demo_batches.generated(customers=40, seed=3, anchor=anchor, size=300) as stream:
        there = list(stream)
    assert [(b.customers, b.groups, b.records) for b in there] == [(b.customers, b.groups, b.records) for b in here]
    assert sum(b.customers for b in there) == 40 and len(there) > 1
