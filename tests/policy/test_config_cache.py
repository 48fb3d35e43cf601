"""The policy configuration is cached per process under a stamp that every change replaces in the
same transaction: a decision never uses a configuration older than what its transaction sees."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, select

from trato.core.db import get_engine, new_session, unit_of_work
from trato.policy import config as policy_config
from trato.policy import service
from trato.policy.models import ConfigStamp

NOON_MADRID = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)


def decide(customer_id: str, purpose: str = "research"):  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        return service.decide(s, customer_id=customer_id, communication="nps", purpose=purpose,
                              channels=["email"], at=NOON_MADRID)


def stamp() -> str | None:
    with unit_of_work() as s:
        return s.scalar(select(ConfigStamp.stamp))


def test_every_configuration_change_gives_a_new_stamp(defaults):
    seen = {stamp()}
    changes = [
        lambda s: service.create_purpose(s, key="loyalty", name_en="Loyalty", name_es="Fidelización",
                                         legal_basis="consent", actor="test"),
        lambda s: service.update_purpose(s, key="loyalty", legal_basis="contract", actor="test"),
        lambda s: service.create_topic(s, purpose="loyalty", key="points", name_en="Points", name_es="Puntos",
                                       actor="test"),
        lambda s: service.delete_topic(s, purpose="loyalty", key="points", actor="test"),
        lambda s: service.set_quiet_hours(s, purpose="loyalty", channel="sms", start_minute=600, end_minute=1200,
                                          exempt=False, actor="test"),
        lambda s: service.delete_quiet_hours(s, purpose="loyalty", channel="sms", actor="test"),
        lambda s: service.create_cap(s, max_count=1, window_seconds=86400, purpose="loyalty", actor="test"),
        lambda s: service.delete_cap(s, cap_id=service.list_caps(s)[-1].id, actor="test"),
        lambda s: service.delete_purpose(s, key="loyalty", actor="test"),
    ]
    for change in changes:
        with unit_of_work() as s:
            change(s)
        seen.add(stamp())
    assert None not in seen and len(seen) == len(changes) + 1


def test_a_change_made_by_another_process_is_seen_at_the_next_decision(defaults, make_customer):
    cid = make_customer()
    assert decide(cid).outcome == "refuse"  # research needs consent; this process caches that
    cached = dict(policy_config._cache)
    # Another process makes research a legitimate interest: its commit replaces the stamp.
    with unit_of_work() as s:
        service.update_purpose(s, key="research", legal_basis="legitimate_interest", actor="test")
    policy_config._cache.clear()
    policy_config._cache.update(cached)  # this process still holds the old configuration
    decision = decide(cid)
    assert decision.outcome == "send" and decision.channel == "email"


def test_a_rolled_back_change_leaves_the_cached_configuration_in_force(defaults, make_customer):
    cid = make_customer()
    before = stamp()
    s = new_session()
    try:
        service.update_purpose(s, key="research", legal_basis="contract", actor="test")
        s.flush()
        s.rollback()
    finally:
        s.close()
    assert stamp() == before
    assert decide(cid).outcome == "refuse"


def test_a_decision_with_the_configuration_cached_reads_each_table_once(defaults, make_customer):
    cid = make_customer()
    decide(cid, purpose="marketing")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(get_engine(), "before_cursor_execute", count)
    try:
        decide(cid, purpose="marketing")
    finally:
        event.remove(get_engine(), "before_cursor_execute", count)
    reads = [st for st in statements if st.lstrip().upper().startswith("SELECT")]
    tables = ["policy_purposes", "policy_topics", "policy_quiet_hours", "policy_caps"]
    assert not [st for st in reads if any(f"FROM {t}" in st for t in tables)]
    for table in ("policy_config_stamp", "identities", "policy_suppressions", "policy_consents",
                  "policy_contacts", "policy_preferences"):
        assert sum(f"FROM {table}" in st for st in reads) <= 1, table
    assert len(reads) <= 8
