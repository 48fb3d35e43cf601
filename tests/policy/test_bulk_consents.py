"""The bulk consent path (imports, the demo) writes exactly what one-at-a-time changes write:
current state, history with proof, audit rows, timeline entries and the customer's counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from trato.core.audit import AuditEntry
from trato.core.db import new_session, unit_of_work
from trato.customers import service as customers
from trato.policy import service
from trato.policy.errors import UnknownPurpose

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
STEPS = [("email", "marketing", "", "granted", "form", {"wording": "v3", "ip": "198.51.100.7"}, 0),
         ("email", "marketing", "", "granted", "form", {}, 1),  # no change
         ("sms", "marketing", "offers", "granted", "import", {"form": "store"}, 2),
         ("email", "marketing", "", "denied", "unsubscribe", {"link": "one-click"}, 3),
         ("email", "research", "", "pending", "double_opt_in", {}, 4)]


def snapshot(cid: str) -> dict[str, object]:
    with new_session(readonly=True) as s:
        return {
            "consents": [(c.channel, c.purpose, c.topic, c.state, c.source, c.updated_at)
                         for c in service.consents_of(s, customer_id=cid)],
            "history": sorted((h.channel, h.purpose, h.topic, h.state, h.previous, h.source, h.proof, h.actor, h.at)
                              for h in service.consent_history(s, customer_id=cid)),
            "audit": sorted((a.actor, a.action, a.object_type, sorted(a.details.items())) for a in s.scalars(
                select(AuditEntry).where(AuditEntry.object_id == cid, AuditEntry.action == "policy.consent"))),
            "timeline": sorted((e.kind, e.name, e.channel, e.department, e.source_id, e.occurred_at,
                                sorted(e.properties.items()))
                               for e in customers.timeline(s, customer_id=cid) if e.kind == "consent"),
            "counts": customers.event_counts(s, customer_id=cid),
        }


def test_bulk_changes_write_what_single_changes_write(defaults, make_customer):
    one, many = make_customer(email="one@example.com"), make_customer(email="many@example.com", phone="+34600000001")
    with unit_of_work() as s:
        for channel, purpose, topic, state, source, proof, minutes in STEPS:
            service.set_consent(s, customer_id=one, channel=channel, purpose=purpose, topic=topic or None,
                                state=state, source=source, proof=proof, actor="test",
                                at=T0 + timedelta(minutes=minutes))
    with unit_of_work() as s:
        written = service.set_consents(s, [
            service.ConsentInput(customer_id=many, channel=channel, purpose=purpose, topic=topic, state=state,
                                 source=source, proof=proof, at=T0 + timedelta(minutes=minutes))
            for channel, purpose, topic, state, source, proof, minutes in STEPS], actor="test")
    assert written == 4
    assert snapshot(many) == snapshot(one)
    assert len(snapshot(many)["history"]) == 4


def test_one_bad_change_writes_nothing(defaults, make_customer):
    cid = make_customer()
    with pytest.raises(UnknownPurpose), unit_of_work() as s:
        service.set_consents(s, [
            service.ConsentInput(customer_id=cid, channel="email", purpose="marketing", state="granted", source="form"),
            service.ConsentInput(customer_id=cid, channel="email", purpose="astrology", state="granted",
                                 source="form")], actor="test")
    assert snapshot(cid)["history"] == []
