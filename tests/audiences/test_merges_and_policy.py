"""Segments over the real write paths: a merged-away profile never counts, what was recorded under
it counts for the survivor, and consent and reachability follow the contact policy's own records."""

from __future__ import annotations

EMAIL_MARKETING = {"type": "consent", "channel": "email", "purpose": "marketing"}
REACHABLE = {"type": "reachable", "channel": "email", "purpose": "marketing"}
MADRID = {"type": "trait", "trait": "city", "op": "eq", "value": "Madrid"}


def test_merged_profiles_count_once_and_bring_their_consent(people, session):
    from trato.audiences import service
    from trato.customers import service as customers
    from trato.policy import service as policy

    policy.install_defaults(session)
    policy.set_consent(session, customer_id=people["Eva"], channel="email", purpose="marketing", state="granted",
                       source="form", actor="test")
    assert service.count(session, definition=MADRID) == 2
    assert [m["id"] for m in service.sample(session, definition=EMAIL_MARKETING)] == [people["Eva"]]
    customers.merge(session, survivor_id=people["Ana"], merged_id=people["Eva"], actor="test")
    session.flush()
    # Eva's profile is gone into Ana's: Madrid counts Ana once, and Eva's consent is now Ana's.
    assert service.count(session, definition=MADRID) == 1
    assert [m["id"] for m in service.sample(session, definition=EMAIL_MARKETING)] == [people["Ana"]]


def test_reachability_follows_suppressions(people, session):
    from datetime import timedelta

    from trato.audiences import service
    from trato.core.clock import utcnow
    from trato.policy import service as policy

    policy.install_defaults(session)
    reachable = {m["id"] for m in service.sample(session, definition=REACHABLE, limit=10)}
    assert reachable == {people["Ana"], people["Luis"]}  # Eva has no e-mail address
    policy.add_suppression(session, kind="email", value="ANA@example.com", reason="hard_bounce", actor="test")
    policy.add_suppression(session, kind="customer", value=people["Luis"], reason="manual", actor="test",
                           purpose="marketing", expires_at=utcnow() + timedelta(days=1))
    assert service.count(session, definition=REACHABLE) == 0
    # Luis's suppression is for marketing only, and ends tomorrow.
    assert [m["id"] for m in service.sample(session, definition={"type": "reachable", "channel": "email"})] == \
        [people["Luis"]]
    later = utcnow() + timedelta(days=2)
    assert [m["id"] for m in service.sample(session, definition=REACHABLE, now=later)] == [people["Luis"]]
