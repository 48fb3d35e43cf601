"""The campaign pipeline end to end: chunks, holdout, policy exclusions, exactly once after crashes,
pause / resume / cancel, and the archive chain intact after bulk appends."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from tests.campaigns.conftest import CREATOR, create, launch, make_people


def recipients(campaign_id: str) -> dict[str, Any]:
    from trato.campaigns.models import CampaignRecipient
    from trato.core.db import new_session

    with new_session(readonly=True) as s:
        return {r.customer_id: r for r in s.scalars(select(CampaignRecipient).where(
            CampaignRecipient.campaign_id == campaign_id))}


def sent_to(sandbox: Any) -> Counter[str]:
    return Counter(record.message.customer_id for record in sandbox.sent)


def test_a_campaign_reaches_every_consenting_member_once_in_chunks(campaign_world: dict[str, Any]) -> None:
    from trato.archive import service as archive
    from trato.campaigns import service
    from trato.core.db import new_session
    from trato.customers import service as customers
    from trato.delivery import service as delivery
    from trato.policy import links
    from trato.policy.links import PATHS

    campaign_id = create(campaign_world, chunk_size=5)
    launch(campaign_id)  # the queue is immediate: the run goes through all chunks
    found = recipients(campaign_id)
    assert set(found) == set(campaign_world["people"])
    assert {r.state for r in found.values()} == {"sent"}
    assert sent_to(campaign_world["sandbox"]) == Counter(campaign_world["people"])
    with new_session(readonly=True) as s:
        assert service.get_campaign(s, campaign_id).state == "done"
        progress = service.progress(s, campaign_id=campaign_id)
        assert progress["processed"] == progress["total"] == 12
        message = delivery.get_message(s, next(iter(found.values())).message_id)
        assert message.state == "accepted" and message.idempotency_key.startswith(f"campaign:{campaign_id}:")
        # The campaign's data is kept once, in the campaign: a message re-rendered (failover) finds it there.
        assert message.data == {} and delivery.data_of(s, message) == {"discount": 20}
        assert [e.state for e in delivery.events_of(s, message.id)] == ["decided", "queued", "sending", "accepted"]
        parts = archive.content_of(s, message.archive_entry_id)
        assert "Cliente" in str(parts["subject"]) and "/t/o/" in str(parts["html"])
        assert archive.verify(s).ok
        # Once on the customer's timeline, with the provider's answer (not also when queued).
        entries = [e for e in customers.timeline(s, customer_id=message.customer_id) if e.kind == "message_sent"]
        assert [(e.properties["message_id"], e.properties["state"]) for e in entries] == [(message.id, "accepted")]
        assert customers.get_customer(s, message.customer_id).event_count == len(
            customers.timeline(s, customer_id=message.customer_id))
    # The unsubscribe link in the message was made for it: it carries its id from the start.
    url = next(word for word in str(parts["text"]).split() if PATHS["unsubscribe"] in word)
    assert links.message_of(links.read_token("unsubscribe", url.strip("()").rsplit("/", 1)[1])) == message.id


def test_holdout_members_are_never_contacted_and_exclusions_keep_their_reason(
        campaign_world: dict[str, Any]) -> None:
    from trato.core.db import unit_of_work
    from trato.policy import service as policy

    unconsented = make_people(3, consent=False, start=100)
    with unit_of_work() as s:
        policy.add_suppression(s, kind="email", value="c0@example.com", reason="hard_bounce", actor="test")
    # Half held out: with 15 people an empty holdout has odds of 0.5^15 (30% left it empty 1 run in 200).
    campaign_id = create(campaign_world, holdout_percent=50, chunk_size=4)
    launch(campaign_id)
    found = recipients(campaign_id)
    holdout = {cid for cid, r in found.items() if r.state == "holdout"}
    assert holdout and all(found[cid].message_id is None for cid in holdout)
    contacted = sent_to(campaign_world["sandbox"])
    assert not holdout & set(contacted)
    assert all(n == 1 for n in contacted.values())
    for cid in unconsented:
        assert found[cid].state in ("excluded", "holdout")
        if found[cid].state == "excluded":
            assert found[cid].reason == "no_consent" and cid not in contacted
    suppressed = found[campaign_world["people"][0]]
    assert suppressed.state == "holdout" or (suppressed.state, suppressed.reason) == ("excluded", "suppressed")
    # Deterministic: the same customers are held out when asked again.
    from trato.campaigns import pipeline, service
    from trato.core.db import new_session

    with new_session(readonly=True) as s:
        campaign = service.get_campaign(s, campaign_id)
        assert {cid for cid in found if pipeline.assign(campaign, cid) == "holdout"} == holdout


@pytest.mark.parametrize("step", ["decided", "archived", "before_commit", "delivered"])
def test_a_run_stopped_mid_chunk_resumes_with_every_recipient_exactly_once(
        campaign_world: dict[str, Any], no_crash: None, step: str) -> None:
    from datetime import timedelta

    from trato.archive import service as archive
    from trato.campaigns import pipeline, service
    from trato.core.db import new_session

    calls = {"n": 0}

    def crash(at: str) -> None:
        if at == step:
            calls["n"] += 1
            if calls["n"] >= 2:  # the second chunk dies at this step (and so does any other run queued)
                raise RuntimeError(f"worker killed at {at}")

    pipeline.crash_point = crash
    campaign_id = create(campaign_world, chunk_size=5)
    launch(campaign_id)  # the queued runs die from the second chunk on (the queue logs the errors)
    assert calls["n"] >= 2
    if step != "delivered":  # killed after delivery, a run has lost nothing: another queued run may finish
        assert len(campaign_world["sandbox"].sent) < 12
    pipeline.crash_point = None
    assert service.run(campaign_id, stale=timedelta(0)) == "done"
    found = recipients(campaign_id)
    assert {r.state for r in found.values()} == {"sent"}
    assert sent_to(campaign_world["sandbox"]) == Counter(campaign_world["people"])
    with new_session(readonly=True) as s:
        assert archive.verify(s).ok
        assert service.progress(s, campaign_id=campaign_id)["processed"] == 12


def test_pause_stops_between_chunks_resume_goes_on_and_cancel_stops_for_good(
        campaign_world: dict[str, Any]) -> None:
    from trato.campaigns import service
    from trato.campaigns.errors import CampaignStateConflict
    from trato.core.db import unit_of_work

    campaign_id = create(campaign_world, chunk_size=4)
    huey = campaign_world["sandbox"]
    from trato.core.queue import huey as queue

    queue.immediate = False  # launch without running: chunks are run by hand here
    try:
        launch(campaign_id)
    finally:
        queue.immediate = True
    assert service.run(campaign_id, max_chunks=1) == "running"
    with unit_of_work() as s:
        service.pause(s, campaign_id=campaign_id, actor=CREATOR)
    assert service.run(campaign_id) == "paused"
    assert len(huey.sent) == 4
    with unit_of_work() as s:
        service.resume(s, campaign_id=campaign_id, actor=CREATOR)  # runs at once (immediate queue)
    assert len(huey.sent) == 12
    with unit_of_work() as s, pytest.raises(CampaignStateConflict):
        service.cancel(s, campaign_id=campaign_id, actor=CREATOR)

    other = create(campaign_world, name="Otra", chunk_size=4)
    queue.immediate = False
    try:
        launch(other)
        assert service.run(other, max_chunks=1) == "running"
        with unit_of_work() as s:
            service.cancel(s, campaign_id=other, actor=CREATOR)
        assert service.run(other) == "cancelled"
    finally:
        queue.immediate = True
    states = Counter(r.state for r in recipients(other).values())
    assert states == {"sent": 4, "pending": 8}


def test_campaign_sends_go_through_the_providers_failover_and_circuits(
        campaign_world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A campaign's bulk sends use the configured providers like a single send: the first e-mail
    provider refuses every message (503s), the campaign is delivered by the second one, and the
    refusals open the first one's circuit so the rest skip it."""
    from trato.core.db import new_session
    from trato.core.settings import get_settings
    from trato.delivery import service as delivery
    from trato.delivery.channels import registry
    from trato.delivery.resilience import health

    previous = registry.use("email", None)  # the campaign world's sandbox stands aside for e-mail
    monkeypatch.setenv("TRATO_EMAIL_URL", "sandbox://?error_rate=1#mail-down sandbox://#mail-up")
    get_settings.cache_clear()
    registry.forget()
    health().reset()
    try:
        campaign_id = create(campaign_world, chunk_size=12)
        launch(campaign_id)
        found = recipients(campaign_id)
        assert {r.state for r in found.values()} == {"sent"}
        up, down = registry.provider("mail-up"), registry.provider("mail-down")
        assert sorted(r.message.customer_id for r in up.sent) == sorted(campaign_world["people"])  # type: ignore[attr-defined]
        assert not down.sent  # type: ignore[attr-defined]
        assert health().is_open("mail-down")
        with new_session(readonly=True) as s:
            providers = {delivery.get_message(s, r.message_id).provider for r in found.values()}
        assert providers == {"mail-up"}  # callbacks for these messages arrive at /hooks/mail-up/…
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        registry.forget()
        health().reset()
        registry.use("email", previous)


def test_a_chunk_written_claimed_is_sent_once_as_written_and_a_stopped_one_is_flagged_not_resent(
        campaign_world: dict[str, Any]) -> None:
    """The runner writes a chunk's messages already claimed (``sending``, attempt 1, with their
    decided, queued and sending events) and sends them from the rows in hand. Should the worker stop
    between that commit and the provider call, no run sends them again: once stale they are
    possibly sent, like any message a stopped worker was sending."""
    from datetime import timedelta

    from tests.campaigns.test_ahead import launched_not_run
    from trato.campaigns import pipeline
    from trato.campaigns.models import Campaign
    from trato.core.clock import utcnow
    from trato.core.db import new_session, unit_of_work
    from trato.delivery import service as delivery

    campaign_id = create(campaign_world, chunk_size=100)
    launched_not_run(campaign_id)
    now = utcnow()
    with unit_of_work() as s:
        rows = pipeline.pending_after(s, campaign_id, after_id=0, limit=100, now=now)
        plan = pipeline.Plan.of(s.get(Campaign, campaign_id))
        first = pipeline.prepare_chunk(s, plan, rows[:6], now)
        sent_ids = pipeline.write_chunk(s, s.get(Campaign, campaign_id), first, now, claim=True)
    with new_session(readonly=True) as s:
        assert {delivery.get_message(s, m).state for m in sent_ids} == {"sending"}
        assert [e.state for e in delivery.events_of(s, sent_ids[0])] == ["decided", "queued", "sending"]
    states = pipeline.deliver(sent_ids, first.decoded_parts(), claimed=first.messages)
    assert set(states.values()) == {"accepted"}
    with unit_of_work() as s:  # the next chunk is written claimed, then the worker stops
        stopped = pipeline.prepare_chunk(s, plan, rows[6:], now)
        stopped_ids = pipeline.write_chunk(s, s.get(Campaign, campaign_id), stopped, now, claim=True)
    assert pipeline.deliver(stopped_ids) == {m: "sending" for m in stopped_ids}  # fresh: another run's
    later = pipeline.deliver(stopped_ids, stale=timedelta(seconds=0))
    assert set(later.values()) == {"possibly_sent"}
    sent = sent_to(campaign_world["sandbox"])
    assert sum(sent.values()) == len(sent_ids) and set(sent.values()) == {1}
    assert not set(stopped_ids) & {r.message.message_id for r in campaign_world["sandbox"].sent}
    with new_session(readonly=True) as s:
        for m in sent_ids:
            assert [e.state for e in delivery.events_of(s, m)] == ["decided", "queued", "sending", "accepted"]
            assert delivery.get_message(s, m).attempts == 1
    found = recipients(campaign_id)
    assert {found[m["customer_id"]].state for m in first.messages} == {"sent"}
    assert {found[m["customer_id"]].state for m in stopped.messages} == {"possibly_sent"}
