"""The demo company's consents: a realistic mix, in both languages, loaded once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

from sqlalchemy import func, select

from trato.core.db import new_session
from trato.demo.consents import load_consents
from trato.demo.service import load_demo
from trato.policy.models import Consent, ConsentChange, ContactPreference, Suppression


def test_the_demo_has_a_realistic_mix_of_consents(database_url):
    load_demo(customers=150, seed=5, progress=None, today=date(2025, 6, 1))
    with new_session(readonly=True) as s:
        states = Counter(s.execute(select(Consent.channel, Consent.state)).all())
        sources = set(s.scalars(select(ConsentChange.source).distinct()))
        wordings = {c.proof.get("wording") for c in s.scalars(select(ConsentChange))}
        history = s.scalar(select(func.count()).select_from(ConsentChange))
        preferences = s.scalar(select(func.count()).select_from(ContactPreference))
        bounces = s.scalar(select(func.count()).select_from(Suppression).where(Suppression.reason == "hard_bounce"))
        latest = s.scalar(select(func.max(ConsentChange.at)))
    assert states[("email", "granted")] > 30 and states[("email", "denied")] > 3 and states[("sms", "granted")] > 10
    assert {"form", "inbound"} <= sources and sources & {"unsubscribe", "preference_center"}
    assert {"alta-web-v3", "signup-web-v3"} <= wordings  # Spanish and English customers
    assert preferences > 10 and bounces >= 1 and latest < datetime(2025, 6, 1, tzinfo=UTC)
    assert load_consents(seed=5, anchor=datetime(2025, 6, 1, tzinfo=UTC)) == 0  # again: nothing new
    with new_session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(ConsentChange)) == history
