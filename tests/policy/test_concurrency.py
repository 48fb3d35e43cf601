"""Concurrent deciders for one customer never exceed a cap (real transactions, one per thread)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import func, select

from trato.core.db import new_session, unit_of_work
from trato.policy import service
from trato.policy.models import ContactLedger

AT = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
WORKERS = 6


def test_concurrent_reservations_respect_the_cap(defaults, make_customer):
    cid = make_customer()
    with unit_of_work() as s:
        service.set_consent(s, customer_id=cid, channel="email", purpose="marketing", state="granted",
                            source="form", actor="test")
        service.create_cap(s, max_count=2, window_seconds=3600, channel="email", actor="test")
    for round_ in range(3):
        barrier = threading.Barrier(WORKERS)
        outcomes: list[str] = []
        errors: list[BaseException] = []

        def work(n: int) -> None:
            session = new_session()
            try:
                barrier.wait(timeout=30)
                decision = service.decide(session, customer_id=cid, communication=f"c{round_}", purpose="service",
                                          channels=["email"], at=AT.replace(hour=10 + round_), reserve=True)
                session.commit()
                outcomes.append(decision.outcome)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                session.rollback()
            finally:
                session.close()

        threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert sorted(outcomes) == ["defer"] * (WORKERS - 2) + ["send"] * 2
    with new_session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(ContactLedger)) == 6
