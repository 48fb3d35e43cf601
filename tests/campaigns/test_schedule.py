"""Schedules, deferrals, throttling and the provider's answers inside a campaign; the CLI."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.campaigns.conftest import create, launch
from tests.campaigns.test_pipeline import recipients, sent_to


def test_local_time_waits_for_each_recipients_zone(campaign_world: dict[str, Any]) -> None:
    from trato.campaigns import pipeline, service

    now = datetime.now(timezone.utc)
    later = (now + timedelta(hours=3)).astimezone(timezone(timedelta(hours=1)))  # Madrid in winter
    campaign_id = create(campaign_world, schedule="local", local_time=later.strftime("%H:%M"))
    launch(campaign_id)
    found = recipients(campaign_id)
    assert {r.state for r in found.values()} == {"pending"} and not campaign_world["sandbox"].sent
    due = {r.not_before for r in found.values()}
    assert len(due) == 1 and timedelta(hours=2) < next(iter(due)) - now <= timedelta(hours=3)
    assert pipeline.local_due("Europe/Madrid", "09:00", datetime(2026, 7, 1, 6, 0, tzinfo=timezone.utc)) == \
        datetime(2026, 7, 1, 7, 0, tzinfo=timezone.utc)  # summer: 09:00 in Madrid is 07:00 UTC
    assert pipeline.local_due("Europe/Madrid", "09:00", datetime(2026, 7, 1, 8, 0, tzinfo=timezone.utc)) == \
        datetime(2026, 7, 2, 7, 0, tzinfo=timezone.utc)  # past already: tomorrow
    assert service.run(campaign_id) == "waiting"


def test_quiet_hours_defer_and_a_scheduled_campaign_waits_for_its_time(campaign_world: dict[str, Any]) -> None:
    from trato.core.db import unit_of_work
    from trato.policy import service as policy

    from zoneinfo import ZoneInfo

    local = datetime.now(ZoneInfo("Europe/Madrid"))
    start = (local.hour * 60 + local.minute + 120) % 1440  # the allowed window opens in two hours
    with unit_of_work() as s:
        policy.set_quiet_hours(s, purpose="marketing", channel="*", start_minute=start, end_minute=(start + 60) % 1440,
                               exempt=False, actor="test")
    campaign_id = create(campaign_world)
    launch(campaign_id)
    found = recipients(campaign_id)
    assert {(r.state, r.reason) for r in found.values()} == {("pending", "quiet_hours")}
    assert all(r.not_before is not None for r in found.values()) and not campaign_world["sandbox"].sent

    from trato.campaigns import service
    from trato.core.db import new_session

    scheduled = create(campaign_world, name="Mañana", schedule="at",
                       send_at=datetime.now(timezone.utc) + timedelta(days=1))
    launch(scheduled)
    with new_session(readonly=True) as s:
        assert service.get_campaign(s, scheduled).state == "scheduled"
    assert service.run(scheduled) == "scheduled"


def test_throttle_sends_one_minutes_worth_and_schedules_the_rest(campaign_world: dict[str, Any]) -> None:
    from trato.campaigns import service

    from sqlalchemy import update

    from trato.campaigns.models import Campaign
    from trato.core.db import unit_of_work

    campaign_id = create(campaign_world, throttle_per_minute=5)
    launch(campaign_id)
    assert len(campaign_world["sandbox"].sent) == 5
    # Within the minute another run (the sweep's, another worker's) sends nothing: the pace is the campaign's.
    assert service.run(campaign_id) == "throttled"
    assert len(campaign_world["sandbox"].sent) == 5
    with unit_of_work() as s:  # a minute later
        s.execute(update(Campaign).where(Campaign.id == campaign_id).values(
            paced_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
    assert service.run(campaign_id) == "throttled"  # the next minute's worth, then waits again
    assert len(campaign_world["sandbox"].sent) == 10


def test_provider_answers_move_recipients_like_single_sends(campaign_world: dict[str, Any]) -> None:
    from trato.delivery.channels.base import ProviderResult
    from trato.delivery.models import Message
    from trato.core.db import new_session

    sandbox = campaign_world["sandbox"]
    sandbox.fail_next(ProviderResult.refused("mailbox unknown", permanent=True), 1)
    sandbox.fail_next(ProviderResult.ambiguous("timed out"), 1)
    sandbox.fail_next(ProviderResult.refused("slow down", retry_after=30), 1)
    campaign_id = create(campaign_world)
    launch(campaign_id)
    states = Counter(r.state for r in recipients(campaign_id).values())
    assert states == {"sent": 9, "failed": 1, "possibly_sent": 1, "queued": 1}
    with new_session(readonly=True) as s:
        messages = Counter(m.state for m in s.scalars(select(Message)))
    assert messages == {"accepted": 9, "failed": 1, "possibly_sent": 1, "retrying": 1}
    assert len(sent_to(sandbox)) == 9


def test_a_worker_stopped_during_the_provider_call_leaves_possibly_sent_never_a_resend(
        campaign_world: dict[str, Any], no_crash: None) -> None:
    from trato.campaigns import pipeline, service
    from trato.delivery import bulk

    real = bulk._record
    calls = {"n": 0}

    def stopped(results: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("worker killed after the provider calls")
        return real(results, **kwargs)

    from trato.core.queue import huey

    campaign_id = create(campaign_world, chunk_size=4)
    huey.immediate = False
    try:
        launch(campaign_id)
    finally:
        huey.immediate = True
    bulk._record = stopped
    try:
        with pytest.raises(RuntimeError):
            service.run(campaign_id)
    finally:
        bulk._record = real
    assert len(campaign_world["sandbox"].sent) == 4
    assert service.run(campaign_id, stale=timedelta(0)) == "done"
    states = Counter(r.state for r in recipients(campaign_id).values())
    assert states == {"sent": 8, "possibly_sent": 4}
    assert sent_to(campaign_world["sandbox"]) == Counter(campaign_world["people"])
    assert pipeline.RECIPIENT_STATE["possibly_sent"] == "possibly_sent"


def test_the_cli_creates_checks_sends_and_reports(campaign_world: dict[str, Any], tmp_path: Any) -> None:
    import json

    from trato.cli import app

    spec = tmp_path / "campaign.json"
    spec.write_text(json.dumps({"name": "Rebajas CLI", "segment_id": campaign_world["segment_id"],
                                "communication": campaign_world["communication"], "channels": ["email"],
                                "data": {"discount": 10}, "seeds": ["qa@empresa.example"]}))
    runner = CliRunner()
    created = runner.invoke(app, ["campaigns", "create", str(spec), "--actor", "ana"])
    assert created.exit_code == 0, created.output
    campaign_id = created.output.split("(")[1].split(")")[0]
    checked = runner.invoke(app, ["campaigns", "preflight", campaign_id])
    assert checked.exit_code == 0 and "12 members" in checked.output and "approval required" in checked.output
    tested = runner.invoke(app, ["campaigns", "test-send", campaign_id, "--customer", campaign_world["people"][0]])
    assert tested.exit_code == 0 and "accepted" in tested.output, tested.output
    assert runner.invoke(app, ["campaigns", "approve", campaign_id, "--actor", "luis"]).exit_code == 0
    from trato.core.queue import huey

    huey.immediate = False  # the CLI runs the chunks itself, with its progress bar
    try:
        sent = runner.invoke(app, ["campaigns", "send", campaign_id])
    finally:
        huey.immediate = True
    assert sent.exit_code == 0, sent.output
    assert "done: 12/12" in sent.output
    status = runner.invoke(app, ["campaigns", "status", campaign_id])
    assert "sent: 12" in status.output
    assert runner.invoke(app, ["campaigns", "pause", campaign_id]).exit_code != 0


def test_the_servers_embedded_worker_resumes_running_campaigns_when_it_starts(
        campaign_world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A server stopped mid-campaign: started again, it goes on at once (not at the next sweep)."""
    from tests.campaigns.test_ahead import launched_not_run
    from trato.campaigns import tasks
    from trato.core import queue

    campaign_id = create(campaign_world, chunk_size=5)
    launched_not_run(campaign_id)  # running, with its run lost
    assert Counter(r.state for r in recipients(campaign_id).values()) == Counter({"pending": 12})
    # The queue is immediate here: the run goes as it is queued (its consumer threads are not needed).
    monkeypatch.setattr(queue.EmbeddedConsumer, "start", lambda self: None)
    queue.start_embedded_worker()
    assert Counter(r.state for r in recipients(campaign_id).values()) == Counter({"sent": 12})

    def unreachable() -> int:
        raise RuntimeError("database not reachable yet")

    monkeypatch.setattr(tasks, "queue_running", unreachable)
    assert tasks.resume_running() == 0  # logged; the sweep queues them later, the server starts anyway


def test_the_stuck_message_sweep_waits_the_campaign_stale_time_for_campaign_messages(
        campaign_world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A campaign's slow provider (TRATO_CAMPAIGN_STALE_SECONDS of 30 minutes) is not cut short by the
    5 minutes the sweep gives a single send left ``sending``."""
    from sqlalchemy import update

    from trato.core.clock import utcnow
    from trato.core.db import new_session, unit_of_work
    from trato.core.settings import get_settings
    from trato.delivery import service as delivery
    from trato.delivery.models import Message

    campaign_id = create(campaign_world)
    launch(campaign_id)
    ids = [r.message_id for r in recipients(campaign_id).values()][:2]
    campaign_message, single = ids
    with unit_of_work() as s:
        s.execute(update(Message).where(Message.id.in_(ids)).values(state="sending", updated_at=utcnow()))
        s.execute(update(Message).where(Message.id == single).values(created_by="api:test"))
    monkeypatch.setenv("TRATO_CAMPAIGN_STALE_SECONDS", "1800")
    get_settings.cache_clear()
    try:
        with new_session(readonly=True) as s:
            assert delivery.stuck_messages(s, now=utcnow() + timedelta(minutes=6)) == [(single, "deliver")]
            assert sorted(delivery.stuck_messages(s, now=utcnow() + timedelta(minutes=31))) == sorted(
                [(single, "deliver"), (campaign_message, "deliver")])
    finally:
        monkeypatch.delenv("TRATO_CAMPAIGN_STALE_SECONDS")
        get_settings.cache_clear()
