"""Inbound STOP / BAJA / CANCELAR / UNSUBSCRIBE ... and START / ALTA."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trato.core.db import new_session, unit_of_work
from trato.policy import service

NOON = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)


def inbound(channel: str, address: str, text: str) -> service.KeywordOutcome:
    with unit_of_work() as s:
        return service.handle_inbound_keyword(s, channel=channel, address=address, text=text)


def decide(cid: str, purpose: str = "marketing", channels=("sms",)):  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        return service.decide(s, customer_id=cid, communication="c", purpose=purpose, channels=list(channels), at=NOON)


@pytest.mark.parametrize("text", ["STOP", "baja", "Baja.", " cancelar ", "UNSUBSCRIBE", "Stop!", "dar de baja"])
def test_stop_words_suppress_and_refuse(defaults, make_customer, text):
    cid = make_customer()
    with unit_of_work() as s:
        service.set_consent(s, customer_id=cid, channel="sms", purpose="marketing", state="granted", source="form",
                            actor="test")
    outcome = inbound("sms", "0034 612 345 678".replace("0034 ", "+34"), text)
    assert (outcome.action, outcome.customer_id) == ("stop", cid)
    with new_session(readonly=True) as s:
        states = {(c.channel, c.purpose): (c.state, c.source) for c in service.consents_of(s, customer_id=cid)}
        (suppression,) = service.list_suppressions(s, kind="phone", value="+34612345678")
    assert states[("sms", "marketing")] == ("denied", "inbound")
    assert states[("sms", "advice")] == ("denied", "inbound")  # legitimate interest: an objection
    assert ("sms", "service") not in states  # a contract is not consent-based
    assert (suppression.reason, suppression.channel) == ("stop_keyword", "sms")
    assert decide(cid).reasons[0].code == "suppressed"
    assert decide(cid, purpose="service", channels=("whatsapp",)).outcome == "send"  # only that channel


def test_start_lifts_what_stop_did(defaults, make_customer):
    cid = make_customer()
    with unit_of_work() as s:
        service.set_consent(s, customer_id=cid, channel="sms", purpose="marketing", state="granted", source="form",
                            actor="test")
    inbound("sms", "+34612345678", "BAJA")
    outcome = inbound("sms", "+34612345678", "Alta")
    assert outcome.action == "start" and outcome.changed == 3
    assert decide(cid).outcome == "send"
    with new_session(readonly=True) as s:
        assert service.list_suppressions(s, kind="phone", value="+34612345678") == []
        history = service.consent_history(s, customer_id=cid)
    assert [h.state for h in history if h.purpose == "marketing"] == ["granted", "denied", "granted"]
    assert history[0].proof["message"] == "Alta"


def test_other_text_does_nothing_and_strangers_are_suppressed_too(defaults, make_customer):
    assert inbound("sms", "+34612345678", "stop sending me the wrong invoice").action is None
    outcome = inbound("whatsapp", "+34699000111", "STOP")
    assert (outcome.action, outcome.customer_id) == ("stop", None)
    # A later customer with that number is not contacted on that channel.
    cid = make_customer(email=None, phone="+34699000111")
    assert decide(cid, purpose="service", channels=("whatsapp", "sms")).channel == "sms"


def test_the_keyword_api(api, defaults, make_customer):
    cid = make_customer()
    response = api.post("/api/v1/policy/keywords", json={"channel": "email", "address": "Ana@Example.com",
                                                         "text": "unsubscribe"})
    assert response.status_code == 200 and response.json() == {"action": "stop", "customer_id": cid, "changed": 3}
    bad = api.post("/api/v1/policy/keywords", json={"channel": "push", "address": "x", "text": "STOP"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "keyword_channel"
