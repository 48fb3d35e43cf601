"""The demo's customers can be written to (postal addresses, letter previews with their pages) and
the demo company's year of sent messages is in the archive, as sent, once."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from trato.archive import service as archive
from trato.archive.models import ArchivedMessage
from trato.content import service as content
from trato.content.channel_parts import address_lines
from trato.customers.models import Customer
from trato.demo.people import Population
from trato.demo.service import load_demo

POSTAL = {
    "ES": re.compile(r"^\d{5}$"), "MX": re.compile(r"^\d{5}$"), "US": re.compile(r"^\d{5}$"),
    "GB": re.compile(r"^[A-Z]{1,2}\d{1,2} \d[A-Z]{2}$"),
}


def test_every_demo_person_has_a_postal_address_of_their_country_and_the_same_seed_the_same_one() -> None:
    anchor = datetime(2025, 6, 1, tzinfo=UTC)
    people = Population(seed=7, anchor=anchor).people(300)
    again = Population(seed=7, anchor=anchor).people(60)
    assert [p.address for p in people[:60]] == [p.address for p in again]
    for person in people:
        address = person.address
        assert address is not None and address["country"] == person.country and address["city"] == person.city
        assert POSTAL[person.country].match(address["postalCode"]), address
        assert address["street"] and (person.country == "GB" or address["state"])
        lines = address_lines({"first_name": person.first_name, "last_name": person.last_name,
                               "address": address}, language=person.language)
        assert 3 <= len(lines) <= 6 and lines[1] == address["street"]
        assert person.traits()["address"] == address
    us = next(p for p in people if p.country == "US")
    line = address_lines({"address": us.address}, language="en")[1]
    assert line == f"{us.city}, {us.address['state']} {us.address['postalCode']}", "US: City, ST ZIP"
    spain = next(p for p in people if p.country == "ES")
    assert not any(line == "SPAIN" for line in address_lines({"address": spain.address}, language="en")), \
        "a letter posted in Spain to Spain names no country"


def test_demo_letters_preview_and_the_year_sent_is_archived_once(session, api) -> None:  # type: ignore[no-untyped-def]
    load_demo(customers=150, seed=7, progress=None)
    anchor = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC)

    # Letters: a demo customer in Spain and one in the US get a PDF with their address.
    letter = next(c for c in content.list_communications(session) if c.key == "direct-debit-failed")
    people = session.scalars(select(Customer).where(Customer.merged_into_id.is_(None))).all()
    for country in ("ES", "US"):
        customer = next(c for c in people if c.country == country)
        shown = api.post(f"/api/v1/communications/{letter.id}/preview",
                         json={"customer_id": customer.id, "channels": ["letter"]})
        assert shown.status_code == 200, shown.text
        rendered = shown.json()["channels"]["letter"]
        assert "error" not in rendered, rendered
        assert rendered["page_images"] and rendered["parts"]["pdf"]

    # The archive: the company's sends, at their historical times, reproducible, verifiable.
    entries = session.scalars(select(ArchivedMessage)).all()
    assert 10 <= len(entries) <= 150, "about 0.2 messages a customer"
    assert all(e.message_id.startswith("demo:") and e.sent_at < anchor for e in entries)
    assert max(e.sent_at for e in entries) > anchor - timedelta(days=10)
    assert min(e.sent_at for e in entries) < anchor - timedelta(days=30)
    keys = {c.id: c.key for c in content.list_communications(session)}
    assert {keys[e.communication_id] for e in entries} == {"welcome", "invoice-ready", "direct-debit-failed"}
    assert {e.channel for e in entries} >= {"email", "sms"}
    one = entries[0]
    assert archive.content_of(session, one.id), "the archived content is there"
    report = archive.verify(session, reproduce=True)
    assert report.problem is None and report.checked == len(entries)
    volumes = archive.last_sent_and_volume(session, communication_ids=list(keys))
    assert sum(count for _, count in volumes.values()) == len(entries)
    session.rollback()

    # Loading again archives nothing twice.
    load_demo(customers=150, seed=7, progress=None)
    assert session.scalar(select(func.count()).select_from(ArchivedMessage)) == len(entries)
    session.rollback()
