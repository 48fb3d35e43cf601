"""The demo's segments: loaded with the demo, in Spanish and English, each with members, loaded once."""

from __future__ import annotations

from datetime import date

from trato.core.db import new_session, unit_of_work
from trato.demo.segments import DEMOS, load_segments
from trato.demo.service import load_demo


def test_demo_segments_have_members_and_load_once(database_url):
    load_demo(customers=150, seed=5, progress=None, today=date.today())
    from trato.audiences import service

    with new_session(readonly=True) as s:
        segments = {seg.name: seg for seg in service.list_segments(s)}
        assert len(segments) == len(DEMOS) + 1
        counts = {name: service.count(s, segment_id=seg.id) for name, seg in segments.items()}
    for name in ("Clientes de Madrid", "Customers in the United States", "Compradores frecuentes",
                 "Marketing por e-mail permitido", "Clientes de hace más de un año"):
        assert counts[name] > 0, counts
    assert 0 < counts["Madrid con e-mail de marketing"] <= min(counts["Clientes de Madrid"],
                                                                counts["Marketing por e-mail permitido"])
    with unit_of_work() as s:
        assert load_segments(s) == 0
