"""Several runs of one campaign at once (PostgreSQL): each claims its own chunks, pause stops them
all, "done" is recorded once, the throttle holds across them and runner slots cap how many go."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.campaigns.conftest import CREATOR, create, launch, make_people
from tests.campaigns.test_pipeline import recipients, sent_to
from tests.conftest import BACKEND

postgresql_only = pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite has one writer: one run at a time")


def launched(world: dict[str, Any], **fields: Any) -> str:
    """A launched campaign whose queued runs are not run: the test runs them."""
    from trato.core.queue import huey

    campaign_id = create(world, **fields)
    huey.immediate = False
    try:
        launch(campaign_id)
    finally:
        huey.immediate = True
    return campaign_id


def in_threads(campaign_id: str, count: int) -> list[Any]:
    """``count`` runs of the campaign at once, each in its own thread; their outcomes (or errors)."""
    from trato.campaigns import service

    outcomes: list[Any] = [None] * count

    def one(n: int) -> None:
        try:
            outcomes[n] = service.run(campaign_id)
        except Exception as exc:  # reported by the assertion on the outcomes
            outcomes[n] = exc

    threads = [threading.Thread(target=one, args=(n,), name=f"run-{n}") for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


@pytest.fixture
def both_in_a_chunk(no_crash: None) -> Iterator[dict[str, Any]]:
    """Each run's first chunk waits (after its decisions) until the other run holds a chunk too:
    two chunks are in flight at once, which holding the campaign row for a chunk would forbid."""
    from trato.campaigns import pipeline

    state: dict[str, Any] = {"barrier": threading.Barrier(2, timeout=20), "chunks": Counter(), "then": None}
    lock = threading.Lock()

    def hook(step: str) -> None:
        if step != "decided":
            return
        name = threading.current_thread().name
        with lock:
            state["chunks"][name] += 1
            first = state["chunks"][name] == 1
        if first:
            if state["barrier"].wait() == 0 and state["then"] is not None:
                state["then"]()

    pipeline.crash_point = hook
    yield state


@postgresql_only
def test_two_runs_claim_different_recipients_and_record_done_once(
        campaign_world: dict[str, Any], both_in_a_chunk: dict[str, Any]) -> None:
    from trato.archive import service as archive
    from trato.campaigns import service
    from trato.core.audit import AuditEntry
    from trato.core.db import new_session

    people = campaign_world["people"] + make_people(48, start=100)
    campaign_id = launched(campaign_world, chunk_size=5, holdout_percent=10)
    outcomes = in_threads(campaign_id, 2)
    assert sorted(outcomes) == ["done", "running"] or outcomes == ["done", "done"], outcomes
    assert set(both_in_a_chunk["chunks"]) == {"run-0", "run-1"}  # both ran chunks, at the same time
    found = recipients(campaign_id)
    assert set(found) == set(people)
    holdout = {cid for cid, r in found.items() if r.state == "holdout"}
    assert {r.state for cid, r in found.items() if cid not in holdout} == {"sent"}
    contacted = sent_to(campaign_world["sandbox"])
    assert contacted == Counter(set(people) - holdout)  # each exactly once, no one held out
    with new_session(readonly=True) as s:
        campaign = service.get_campaign(s, campaign_id)
        assert (campaign.state, campaign.processed, campaign.recipients_total) == ("done", 60, 60)
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.object_id == campaign_id, AuditEntry.action == "campaign.done")) == 1
        assert archive.verify(s).ok  # two chunks appended to the chain concurrently
    assert service.run(campaign_id) == "done"  # a late run changes nothing


@postgresql_only
def test_pause_stops_every_run_between_chunks(campaign_world: dict[str, Any],
                                              both_in_a_chunk: dict[str, Any]) -> None:
    from trato.campaigns import service
    from trato.core.db import unit_of_work

    make_people(48, start=100)
    campaign_id = launched(campaign_world, chunk_size=5)

    def pause() -> None:  # while both runs hold a chunk
        with unit_of_work() as s:
            service.pause(s, campaign_id=campaign_id, actor=CREATOR)

    both_in_a_chunk["then"] = pause
    assert in_threads(campaign_id, 2) == ["paused", "paused"]
    states = Counter(r.state for r in recipients(campaign_id).values())
    assert states == {"sent": 10, "pending": 50}  # the two chunks in hand, nothing after
    assert len(campaign_world["sandbox"].sent) == 10


@postgresql_only
def test_the_throttle_holds_across_runs(campaign_world: dict[str, Any]) -> None:
    campaign_id = launched(campaign_world, throttle_per_minute=4)
    assert sorted(in_threads(campaign_id, 2)) == ["throttled", "throttled"]
    assert len(campaign_world["sandbox"].sent) == 4  # one minute's worth between them


def test_runs_beyond_the_runner_slots_end_at_once(campaign_world: dict[str, Any]) -> None:
    from contextlib import ExitStack

    from trato.campaigns import runner, service
    from trato.core.settings import get_settings

    campaign_id = launched(campaign_world, chunk_size=5)
    slots = get_settings().campaign_runs
    assert slots == (1 if BACKEND == "sqlite" else 2)
    with ExitStack() as held:
        taken = [held.enter_context(runner.runner_slot(campaign_id, slots)) for _ in range(slots)]
        assert sorted(taken) == list(range(slots))
        assert service.run(campaign_id) == "busy"
        assert not campaign_world["sandbox"].sent
    assert service.run(campaign_id) == "done"  # the slots are free again
    assert len(campaign_world["sandbox"].sent) == 12


@pytest.mark.parametrize(("url", "value", "runs"), [
    ("sqlite:///x.db", None, 1), ("postgresql://postgres@127.0.0.1/x", None, 2),
    ("postgresql://postgres@127.0.0.1/x", 6, 6), ("sqlite:///x.db", 1, 1),
])
def test_parallelism_defaults_to_the_database(url: str, value: int | None, runs: int) -> None:
    from trato.core.settings import load_settings

    assert load_settings(database_url=url, campaign_parallelism=value).campaign_runs == runs


@pytest.mark.parametrize(("url", "value"), [("sqlite:///x.db", 2), ("postgresql://postgres@127.0.0.1/x", 0),
                                            ("postgresql://postgres@127.0.0.1/x", 65)])
def test_a_bad_parallelism_stops_start_up_naming_the_setting(url: str, value: int) -> None:
    from trato.core.errors import ConfigurationError
    from trato.core.settings import load_settings

    with pytest.raises(ConfigurationError) as caught:
        load_settings(database_url=url, campaign_parallelism=value)
    assert caught.value.setting == "TRATO_CAMPAIGN_PARALLELISM"
    assert caught.value.message.startswith("TRATO_CAMPAIGN_PARALLELISM")
