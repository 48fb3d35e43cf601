"""The decision against the real database: consent, suppression, quiet hours, caps, channel choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trato.core.db import unit_of_work
from trato.policy import service

# 2026-06-10 is a Wednesday; 10:00 UTC is 12:00 in Madrid (summer time).
NOON_MADRID = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)


def decide(customer_id: str, **kwargs):  # type: ignore[no-untyped-def]
    args = {"communication": "spring-offers", "purpose": "marketing", "channels": ["email", "sms"],
            "at": NOON_MADRID, **kwargs}
    with unit_of_work() as s:
        return service.decide(s, customer_id=customer_id, **args)


def grant(customer_id: str, channel: str, purpose: str = "marketing", topic: str | None = None,
          state: str = "granted", source: str = "form") -> None:
    with unit_of_work() as s:
        service.set_consent(s, customer_id=customer_id, channel=channel, purpose=purpose, topic=topic, state=state,
                            source=source, actor="test", at=NOON_MADRID - timedelta(days=30))


def codes(decision) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(r.channel, r.code) for r in decision.reasons]


def test_marketing_without_consent_is_refused_with_a_reason_per_channel(defaults, make_customer):
    cid = make_customer()
    decision = decide(cid)
    assert decision.outcome == "refuse" and decision.channel is None
    assert codes(decision) == [("email", "no_consent"), ("sms", "no_consent")]
    assert decision.reasons[0].text("en") == "email: no consent for marketing"
    assert decision.reasons[0].text("es") == "email: sin consentimiento para marketing"


def test_service_messages_need_no_consent_but_an_objection_stops_them(defaults, make_customer):
    cid = make_customer()
    assert decide(cid, purpose="advice").outcome == "send"
    grant(cid, "email", purpose="advice", state="denied", source="preference_center")
    decision = decide(cid, purpose="advice")
    assert decision.outcome == "send" and decision.channel == "sms"
    assert codes(decision) == [("email", "consent_denied"), ("sms", "ok")]
    assert decision.reasons[0].text("en") == "email: no consent for advice since 2026-05-11 (preference center)"


def test_consent_sends_on_the_first_channel_and_the_decision_is_logged(defaults, make_customer):
    cid = make_customer()
    grant(cid, "sms")
    decision = decide(cid)
    assert (decision.outcome, decision.channel, decision.at) == ("send", "sms", NOON_MADRID)
    assert codes(decision) == [("email", "no_consent"), ("sms", "ok")]
    with unit_of_work() as s:
        (logged,) = service.decisions_of(s, customer_id=cid)
        assert logged.outcome == "send" and logged.reasons == [["email", "no_consent", None], ["sms", "ok", None]]


def test_a_topic_refusal_keeps_the_rest_of_the_purpose(defaults, make_customer):
    cid = make_customer()
    grant(cid, "email")
    grant(cid, "email", topic="offers", state="denied")
    assert decide(cid, topic="newsletter").outcome == "send"
    assert codes(decide(cid, topic="offers"))[0] == ("email", "consent_denied")


def test_unreachable_and_suppressed_channels_are_skipped(defaults, make_customer):
    cid = make_customer(email=None)
    grant(cid, "email")
    grant(cid, "sms")
    with unit_of_work() as s:
        service.add_suppression(s, kind="phone", value="+34 612 345 678", reason="complaint", actor="test")
    decision = decide(cid)
    assert decision.outcome == "refuse"
    assert codes(decision) == [("email", "unreachable"), ("sms", "suppressed")]
    assert decision.reasons[1].text("es") == "sms: suprimido (queja)"


def test_an_expired_suppression_no_longer_counts(defaults, make_customer):
    cid = make_customer()
    grant(cid, "email")
    with unit_of_work() as s:
        service.add_suppression(s, kind="email", value="ANA@example.com", reason="hard_bounce", actor="test",
                                expires_at=NOON_MADRID - timedelta(minutes=1))
    assert decide(cid).outcome == "send"


def test_quiet_hours_defer_to_eight_in_the_customers_zone(defaults, make_customer):
    cid = make_customer(phone="+525512345678")  # Mexico City, from the phone
    grant(cid, "email")
    at = datetime(2026, 6, 10, 4, 0, tzinfo=UTC)  # 22:00 the day before in Mexico City
    decision = decide(cid, at=at)
    assert decision.outcome == "defer" and decision.channel == "email"
    assert decision.at == datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # 08:00 CST (UTC-6)
    assert decision.zone == "America/Mexico_City"
    assert decision.reasons[0].text("en") == "email: quiet hours until 2026-06-10 08:00 America/Mexico_City"
    assert decide(cid, at=at, purpose="transactional").outcome == "send"


def test_the_profile_zone_wins_over_the_phone(defaults, make_customer):
    cid = make_customer(timezone="Europe/London")
    grant(cid, "email")
    decision = decide(cid, at=datetime(2026, 6, 10, 6, 30, tzinfo=UTC))  # 07:30 London
    assert decision.at == datetime(2026, 6, 10, 7, 0, tzinfo=UTC)


def test_the_marketing_cap_counts_every_channel_and_defers_until_it_frees(defaults, make_customer):
    cid = make_customer()
    grant(cid, "email")
    grant(cid, "sms")
    sent = [NOON_MADRID - timedelta(days=d) for d in (6, 3, 1)]
    with unit_of_work() as s:
        for when, channel in zip(sent, ("email", "sms", "email"), strict=True):
            service.record_contact(s, customer_id=cid, channel=channel, purpose="marketing", communication="x",
                                   sent_at=when)
    decision = decide(cid)
    assert decision.outcome == "defer"
    assert codes(decision) == [("email", "capped"), ("sms", "capped")]
    assert decision.at == sent[0] + timedelta(days=7)
    assert decision.reasons[0].text("en").startswith("email: cap 3/7d reached until 2026-06-11 ")
    assert decide(cid, purpose="service").outcome == "send"  # other purposes are not counted


def test_a_per_communication_cap(defaults, make_customer):
    cid = make_customer()
    with unit_of_work() as s:
        service.create_cap(s, max_count=1, window_seconds=86400, communication="otp", actor="test")
        service.record_contact(s, customer_id=cid, channel="sms", purpose="transactional", communication="otp",
                               sent_at=NOON_MADRID - timedelta(hours=1), message_id="m-1")
        service.record_contact(s, customer_id=cid, channel="sms", purpose="transactional", communication="otp",
                               sent_at=NOON_MADRID - timedelta(hours=1), message_id="m-1")  # a repeat
    assert decide(cid, purpose="transactional", communication="receipt").outcome == "send"
    decision = decide(cid, purpose="transactional", communication="otp")
    assert decision.outcome == "defer" and decision.at == NOON_MADRID + timedelta(hours=23)


def test_the_preferred_channel_goes_first(defaults, make_customer):
    cid = make_customer()
    grant(cid, "email")
    grant(cid, "sms")
    with unit_of_work() as s:
        service.set_preference(s, customer_id=cid, preferred_channel="sms", actor="test")
    assert decide(cid).channel == "sms"
    assert decide(cid, channels=["email"]).channel == "email"  # not offered: the order given stands


def test_the_preferred_channel_can_come_from_a_trait(defaults, make_customer):
    cid = make_customer(preferred_channel="sms")
    grant(cid, "email")
    grant(cid, "sms")
    assert decide(cid).channel == "sms"


def test_pending_double_opt_in_is_not_consent(defaults, make_customer):
    cid = make_customer()
    grant(cid, "email", state="pending")
    assert codes(decide(cid))[0] == ("email", "consent_pending")


def test_a_reservation_counts_against_the_cap_until_released(defaults, make_customer):
    cid = make_customer()
    grant(cid, "email")
    with unit_of_work() as s:
        service.create_cap(s, max_count=1, window_seconds=3600, channel="email", actor="test")
    with unit_of_work() as s:
        first = service.decide(s, customer_id=cid, communication="c", purpose="marketing", channels=["email"],
                               at=NOON_MADRID, reserve=True)
    assert first.outcome == "send" and first.reservation_id
    assert decide(cid, channels=["email"]).outcome == "defer"
    with unit_of_work() as s:
        service.release_reservation(s, reservation_id=first.reservation_id)
    assert decide(cid, channels=["email"]).outcome == "send"


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"purpose": "gossip"}, "unknown_purpose"),
    ({"topic": "horoscopes"}, "unknown_topic"),
    ({"channels": ["email", "pigeon"]}, "unknown_channel"),
])
def test_unknown_names_are_refused_with_a_code(defaults, make_customer, kwargs, code):
    from trato.core.errors import TratoError

    cid = make_customer()
    with pytest.raises(TratoError) as caught:
        decide(cid, **kwargs)
    assert caught.value.code == code and caught.value.status_code == 422


def test_refusing_the_whole_purpose_covers_its_topics(defaults, make_customer):
    cid = make_customer()
    grant(cid, "email", topic="newsletter")
    assert decide(cid, topic="newsletter").outcome == "send"
    grant(cid, "email", state="denied", source="unsubscribe")
    assert codes(decide(cid, topic="newsletter"))[0] == ("email", "consent_denied")


def test_a_refusal_given_under_a_profile_later_merged_still_counts(defaults, make_customer):
    from trato.customers import service as customers

    cid = make_customer()
    other = make_customer(email="ana.work@example.com", phone=None)
    grant(cid, "email")
    with unit_of_work() as s:
        service.set_consent(s, customer_id=other, channel="email", purpose="marketing", state="granted",
                            source="form", actor="test", at=NOON_MADRID - timedelta(days=40))
        service.set_consent(s, customer_id=other, channel="email", purpose="marketing", state="denied",
                            source="unsubscribe", actor="test", at=NOON_MADRID - timedelta(days=2))
        service.record_contact(s, customer_id=other, channel="sms", purpose="marketing", communication="x",
                               sent_at=NOON_MADRID - timedelta(hours=1))
        customers.merge(s, survivor_id=cid, merged_id=other, actor="test")
    decision = decide(cid, channels=["email"])
    assert decision.reasons[0].code == "consent_denied"
    with unit_of_work() as s:
        config = service.load_config(s)
        ctx = service.prepare_contexts(s, customer_ids=[cid], config=config, at=NOON_MADRID)[cid]
    assert len(ctx.contacts) == 1


def test_reservations_booked_in_bulk_get_fresh_ids_in_order_beside_single_bookings(session, make_customer):
    """reserve_many takes its ids up front (core.db.next_ids) instead of INSERT … RETURNING: they
    are the rows' own ids, in the items' order, and never collide with rows booked one at a time."""
    from datetime import datetime, timezone

    from sqlalchemy import select

    from trato.policy import service as policy
    from trato.policy.models import ContactLedger

    at = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
    ana = make_customer()
    policy.record_contact(session, customer_id=ana, channel="email", purpose="advertise",
                          communication="promo", topic=None, sent_at=at, message_id="msg_single")
    items = [{"customer_id": f"cus_{i}", "channel": "sms" if i % 2 else "email", "purpose": "advertise",
              "communication": "promo", "sent_at": at} for i in range(7)]
    first = policy.reserve_many(session, items)
    second = policy.reserve_many(session, items[:3])
    session.commit()
    assert len(set(first + second)) == 10 and first == sorted(first) and second == sorted(second)
    stored = {row.id: (row.customer_id, row.channel, row.status)
              for row in session.scalars(select(ContactLedger))}
    assert len(stored) == 11
    for reservation_id, item in zip(first + second, items + items[:3], strict=True):
        assert stored[reservation_id] == (item["customer_id"], item["channel"], "reserved")
    assert policy.reserve_many(session, []) == []
