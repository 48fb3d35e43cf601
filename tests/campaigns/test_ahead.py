"""Chunks prepared ahead in a pool process: the same messages as without it, each recipient once,
and chunks taken meanwhile left out rather than sent twice."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.campaigns.conftest import create, launch, make_people
from tests.campaigns.test_pipeline import recipients, sent_to


@pytest.fixture(params=[1, 2], ids=["one-preparing", "two-preparing"])
def pool(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Any:
    """A pool of one process (one chunk prepared ahead) or two (two chunks, side by side)."""
    from trato.campaigns import ahead
    from trato.core.settings import get_settings

    monkeypatch.setenv("TRATO_CAMPAIGN_PREPARE_PROCESSES", str(request.param))
    get_settings.cache_clear()
    yield ahead
    monkeypatch.setenv("TRATO_CAMPAIGN_PREPARE_PROCESSES", "0")
    get_settings.cache_clear()
    ahead.shutdown()


def test_a_campaign_prepared_ahead_reaches_everyone_once(campaign_world: dict[str, Any], pool: Any) -> None:
    from trato.archive import service as archive
    from trato.campaigns import service
    from trato.core.db import new_session

    from trato.campaigns import ahead

    people = campaign_world["people"] + make_people(13, start=200)
    campaign_id = create(campaign_world, chunk_size=4, holdout_percent=20)
    handed: list[list[int]] = []
    submit = ahead.submit

    def watched(plan: Any, *, rows: list[Any], now: Any) -> Any:
        handed.append([r.id for r in rows])
        return submit(plan, rows=rows, now=now)

    ahead.submit = watched  # type: ignore[assignment]
    try:
        launch(campaign_id)
    finally:
        ahead.submit = submit  # type: ignore[assignment]
    # Chunks handed to the pool follow each other in recipient order and never overlap.
    flat = [rid for chunk in handed for rid in chunk]
    assert len(handed) >= 4 and flat == sorted(set(flat)) and all(len(chunk) <= 4 for chunk in handed)
    found = recipients(campaign_id)
    assert set(found) == set(people)
    contacted = {cid for cid, r in found.items() if r.state == "sent"}
    held_out = {cid for cid, r in found.items() if r.state == "holdout"}
    assert contacted | held_out == set(people) and held_out  # 25 people at 20%: never none in practice
    assert sent_to(campaign_world["sandbox"]) == Counter(contacted)
    assert pool.pool() is not None  # the pool did run
    with new_session(readonly=True) as s:
        assert service.get_campaign(s, campaign_id).state == "done"
        assert service.progress(s, campaign_id=campaign_id)["processed"] == 25
        report = archive.verify(s)
        assert report.ok and report.checked == len(contacted)
        for cid in contacted:
            parts = archive.content_of(s, service_message(s, found[cid].message_id).archive_entry_id)
            assert "/t/o/" in str(parts["html"]) and str(parts["subject"]).startswith("Rebajas Cliente")


def service_message(s: Any, message_id: str) -> Any:
    from trato.delivery import service as delivery

    return delivery.get_message(s, message_id)


def test_a_chunk_prepared_ahead_leaves_out_what_was_taken_meanwhile(campaign_world: dict[str, Any]) -> None:
    """Recipients processed by someone else between preparing and writing are not written again."""
    from trato.campaigns import pipeline
    from trato.campaigns.models import Campaign
    from trato.core.clock import utcnow
    from trato.core.db import new_session, unit_of_work

    campaign_id = create(campaign_world, chunk_size=100)
    launched_not_run(campaign_id)
    now = utcnow()
    with new_session(readonly=True) as s:
        plan = pipeline.Plan.of(s.get(Campaign, campaign_id))
        rows = pipeline.pending_after(s, campaign_id, after_id=0, limit=100, now=now)
        prepared = pipeline.prepare_chunk(s, plan, rows, now)
    assert len(rows) == 12 and len(prepared.messages) == 12
    with unit_of_work() as s:  # another runner takes the first five meanwhile
        first = prepared.only({r.id for r in rows[:5]})
        pipeline.write_chunk(s, s.get(Campaign, campaign_id), first, now)
    with unit_of_work() as s:
        keep = pipeline.still_pending(s, campaign_id, [r.id for r in rows])
        assert keep == {r.id for r in rows[5:]}
        rest = prepared.only(keep)
        assert len(rest.messages) == len(rest.archived) == len(rest.decoded_parts()) == 7
        assert {m["customer_id"] for m in rest.messages}.isdisjoint({r.customer_id for r in rows[:5]})
        pipeline.write_chunk(s, s.get(Campaign, campaign_id), rest, now)
    found = recipients(campaign_id)
    assert Counter(r.state for r in found.values()) == Counter({"queued": 12})


def launched_not_run(campaign_id: str) -> None:
    """Launched (recipients materialised and pending) with no run queued."""
    from unittest import mock

    with mock.patch("trato.campaigns.service._enqueue_after_commit"):
        launch(campaign_id)


def test_a_customer_contacted_between_deciding_and_writing_is_decided_again(campaign_world: dict[str, Any]) -> None:
    """A single send books the customer's last allowed contact while the chunk is being prepared:
    the chunk leaves that customer pending and the next decision sees the cap."""
    from trato.campaigns import pipeline, service
    from trato.campaigns.models import Campaign
    from trato.core.clock import utcnow
    from trato.core.db import new_session, unit_of_work
    from trato.policy import service as policy

    with unit_of_work() as s:
        policy.create_cap(s, max_count=1, window_seconds=86400, channel="email", actor="test")
    campaign_id = create(campaign_world, chunk_size=100)
    launched_not_run(campaign_id)
    now = utcnow()
    with new_session(readonly=True) as s:
        rows = pipeline.pending_after(s, campaign_id, after_id=0, limit=100, now=now)
        prepared = pipeline.prepare_chunk(s, pipeline.Plan.of(s.get(Campaign, campaign_id)), rows, now)
    assert len(prepared.messages) == 12
    busy, busy_row = rows[3].customer_id, rows[3].id
    with unit_of_work() as s:  # meanwhile: an alert to one of them takes the day's only e-mail
        decision = policy.decide(s, customer_id=busy, communication="alert", purpose="transactional",
                                 channels=["email"], reserve=True)
        assert decision.outcome == "send"
    with unit_of_work() as s:
        ids = pipeline.write_chunk(s, s.get(Campaign, campaign_id), prepared, now)
    assert len(ids) == 11 and pipeline.message_id(campaign_id, busy_row) not in ids
    assert recipients(campaign_id)[busy].state == "pending"
    assert service.run(campaign_id) == "waiting"  # the next chunk decides again: the cap holds,
    found = recipients(campaign_id)            # so the campaign waits for the window to free
    assert (found[busy].state, found[busy].reason) == ("pending", "capped") and found[busy].not_before is not None
    assert Counter(r.state for r in found.values()) == Counter({"sent": 11, "pending": 1})


def test_a_pool_process_exits_when_its_parent_is_killed(tmp_path: Any) -> None:
    """A killed server must not leave preparing processes behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(  # (spawn imports the main module again in the pool process: hence the guard)
        "import os, time\n"
        "from trato.campaigns import ahead\n"
        "if __name__ == '__main__':\n"
        "    pool = ahead.pool()\n"
        "    pool.submit(os.getpid).result()\n"
        "    print(' '.join(str(p) for p in pool._processes), flush=True)\n"
        "    time.sleep(60)\n")
    env = {**os.environ, "TRATO_CAMPAIGN_PREPARE_PROCESSES": "1"}
    parent = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        children = [int(p) for p in parent.stdout.readline().split()]  # type: ignore[union-attr]
        assert children
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p) for p in children):
            time.sleep(0.2)
        assert not any(_alive(p) for p in children)
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_run_collects_less_often_and_gives_the_thresholds_back(campaign_world: dict[str, Any]) -> None:
    import gc

    from trato.campaigns import runner

    seen: list[tuple[int, int, int]] = []
    before = gc.get_threshold()
    with runner.fewer_collections():
        seen.append(gc.get_threshold())
        with runner.fewer_collections():  # a second run at the same time
            seen.append(gc.get_threshold())
        seen.append(gc.get_threshold())  # still one run going
    assert seen == [runner.RUN_THRESHOLDS] * 3
    assert gc.get_threshold() == before
