"""Privacy requests: the export holds everything; after erasure no table holds the person's
e-mail, phone or name, counts stay, and a later import of the same address is not contacted."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from trato.core.errors import TratoError
from trato.core.db import get_engine, new_session, unit_of_work
from trato.policy import service

NOON = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
EMAIL, PHONE, FIRST, LAST = "zelmira.quintanilla@example.org", "+34611987654", "Zelmira", "Quintanilla"
OTHER_EMAIL = "zq.work@example.net"


def _person(make_customer) -> str:  # type: ignore[no-untyped-def]
    from trato.customers import service as customers

    cid = make_customer(email=EMAIL, phone=PHONE, first_name=FIRST, last_name=LAST, city="Zaragoza")
    other = make_customer(email=OTHER_EMAIL, phone=None, first_name=FIRST)
    with unit_of_work() as s:
        customers.merge(s, survivor_id=cid, merged_id=other, actor="test")  # her second profile, merged
        customers.add_identity(s, customer_id=cid, kind="user_id", value="zq-77", actor="test")
        customers.record_event(s, customer_id=cid, kind="note", name="Note", department="service",
                               properties={"text": f"{FIRST} {LAST} called from {PHONE}"})
        service.set_consent(s, customer_id=cid, channel="email", purpose="marketing", state="granted", source="form",
                            proof={"ip": "203.0.113.5", "email": EMAIL}, actor="test")
        service.add_suppression(s, kind="phone", value=PHONE, reason="complaint", actor="test", note=f"{FIRST} angry")
        service.decide(s, customer_id=cid, communication="c", purpose="marketing", channels=["email"], at=NOON)
        service.record_contact(s, customer_id=cid, channel="email", purpose="marketing", communication="c",
                               sent_at=NOON)
    with unit_of_work() as s:
        service.handle_inbound_keyword(s, channel="sms", address=PHONE, text="STOP")
    with unit_of_work() as s:  # what was sent to her is archived, with her name in it
        from trato.archive import service as archive

        archive.record(s, customer_id=cid, communication_id="com-welcome", version_id="ver-1", channel="email",
                       language="es", recipient=EMAIL, parts={"subject": f"Hola {FIRST}", "html": f"<p>{FIRST} {LAST}</p>"},
                       render_context={"first_name": FIRST}, message_id="msg-zq-1", sent_at=NOON)
    return cid


def _everything_stored() -> str:
    from trato import tables

    dump = []
    with get_engine().connect() as conn:
        for table in tables.metadata.sorted_tables:
            for row in conn.execute(text(f"SELECT * FROM {table.name}")):
                dump.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(dump)


def test_the_export_holds_everything(api, defaults, make_customer):
    cid = _person(make_customer)
    archive = api.get(f"/api/v1/customers/{cid}/privacy-export").json()
    assert archive["format"] == "trato.privacy-export" and archive["profile"]["first_name"] == FIRST
    assert {(i["kind"], i["value"]) for i in archive["identities"]} >= {("email", EMAIL), ("phone", PHONE),
                                                                        ("email", OTHER_EMAIL), ("user_id", "zq-77")}
    assert any(e["kind"] == "note" and PHONE in e["properties"]["text"] for e in archive["timeline"])
    assert archive["consents"] and archive["consent_history"][-1]["proof"]["ip"] == "203.0.113.5"
    assert {s["reason"] for s in archive["suppressions"]} == {"complaint", "stop_keyword"}
    assert len(archive["messages"]) == 1 and archive["decisions"][0]["outcome"] == "send"
    with new_session(readonly=True) as s:
        from trato.core.audit import AuditEntry

        assert s.scalar(select(AuditEntry.action).where(AuditEntry.action == "privacy.export")) == "privacy.export"


def test_after_erasure_no_table_holds_the_person(api, defaults, make_customer):
    cid = _person(make_customer)
    before = _everything_stored()
    assert EMAIL in before and PHONE in before and LAST in before
    response = api.post(f"/api/v1/customers/{cid}/privacy-erase")
    assert response.status_code == 200, response.text
    assert response.json()["profiles"] == 2 and response.json()["addresses_blocked"] == 3
    after = _everything_stored()
    for secret in (EMAIL, OTHER_EMAIL, PHONE, PHONE.lstrip("+"), FIRST, LAST, "Zaragoza", "zq-77", "203.0.113.5"):
        assert secret not in after, secret
    # The archive keeps a tombstone whose chain still verifies.
    with new_session(readonly=True) as s:
        from trato.archive import service as archive

        assert archive.verify(s).ok
    # Counts stay: the timeline entries are there, without their payloads.
    timeline = api.get(f"/api/v1/customers/{cid}/timeline").json()["items"]
    assert {e["kind"] for e in timeline} >= {"note", "consent"} and all(e["properties"] == {} for e in timeline)
    with new_session(readonly=True) as s:
        from trato.core.audit import AuditEntry

        erased = s.scalar(select(AuditEntry).where(AuditEntry.action == "privacy.erase"))
        assert erased.object_id == cid


def test_an_import_bringing_the_address_back_is_not_contacted(defaults, make_customer):
    cid = _person(make_customer)
    with unit_of_work() as s:
        service.erase_customer(s, customer_id=cid, actor="test")
    again = make_customer(email=EMAIL.upper(), phone=PHONE, first_name=FIRST)
    with unit_of_work() as s:
        service.set_consent(s, customer_id=again, channel="email", purpose="marketing", state="granted",
                            source="import", actor="test")
        decision = service.decide(s, customer_id=again, communication="c", purpose="service",
                                  channels=["email", "sms"], at=NOON)
    assert [(r.channel, r.code) for r in decision.reasons] == [("email", "suppressed"), ("sms", "suppressed")]
    assert decision.reasons[0].text("en") == "email: suppressed (erased)"
    with unit_of_work() as s, pytest.raises(TratoError) as caught:
        service.delete_suppression(s, suppression_id=service.list_suppressions(s, kind="email", value=EMAIL)[0].id,
                                   actor="test")
    assert caught.value.code == "suppression_permanent"


def test_the_privacy_commands(defaults, make_customer, tmp_path):
    from trato.cli import app

    cid = _person(make_customer)
    out = tmp_path / "archive.json"
    result = CliRunner().invoke(app, ["privacy", "export", cid, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert ("email", EMAIL) in {(i["kind"], i["value"]) for i in json.loads(out.read_text())["identities"]}
    result = CliRunner().invoke(app, ["privacy", "erase", cid, "--yes"])
    assert result.exit_code == 0 and "2 profile(s)" in result.output, result.output
    assert EMAIL not in _everything_stored()
    assert CliRunner().invoke(app, ["privacy", "erase", "cus_nobody", "--yes"]).exit_code == 1
