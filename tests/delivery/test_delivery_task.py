"""The delivery task: idempotent on the message row, retries clear refusals with backoff, never
resends a message the provider may have taken."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trato.delivery.channels.base import ProviderResult
from trato.delivery.service import BACKOFF_BASE, BACKOFF_CAP, retry_delay

pytestmark = pytest.mark.usefixtures("immediate_queue")


def _ledger(message_id: str) -> list[str]:
    from sqlalchemy import select

    from trato.core.db import unit_of_work
    from trato.delivery.models import Message
    from trato.policy.models import ContactLedger

    with unit_of_work() as s:
        reservation = s.get(Message, message_id).reservation_id
        return list(s.scalars(select(ContactLedger.status).where(ContactLedger.id == reservation)))


def _states(message_id: str) -> list[str]:
    from trato.core.db import unit_of_work
    from trato.delivery import service

    with unit_of_work() as s:
        return [e.state for e in service.events_of(s, message_id)]


def test_an_accepted_message_confirms_its_contact_and_a_second_run_does_nothing(
        api: Any, sandbox: Any, send_body: Any) -> None:
    from trato.delivery import service

    message_id = api.post("/api/v1/messages", json=send_body()).json()["id"]
    assert _ledger(message_id) == ["sent"]
    assert service.deliver(message_id) == "accepted"  # the queue delivered the task twice
    assert len(sandbox.find(message_id)) == 1
    assert _states(message_id) == ["decided", "queued", "sending", "accepted"]


def test_a_clear_refusal_is_retried_later_and_then_accepted(api: Any, sandbox: Any, send_body: Any,
                                                            immediate_queue: Any) -> None:
    from trato.delivery import service

    sandbox.fail_next(ProviderResult.refused("503 try later", retry_after=30), times=2)
    message = api.post("/api/v1/messages", json=send_body()).json()
    shown = api.get(f"/api/v1/messages/{message['id']}").json()
    assert shown["state"] == "retrying"
    assert shown["last_error"] == "503 try later"
    assert shown["attempts"] == 1
    assert any(task.args == (message["id"],) for task in immediate_queue.scheduled())
    assert service.deliver(message["id"]) == "retrying"  # the scheduled retry runs: refused again
    assert service.deliver(message["id"]) == "accepted"
    assert len(sandbox.find(message["id"])) == 1
    shown = api.get(f"/api/v1/messages/{message['id']}").json()
    assert shown["attempts"] == 3
    assert [e["state"] for e in shown["events"]] == [
        "decided", "queued", "sending", "retrying", "sending", "retrying", "sending", "accepted"]
    assert shown["events"][3]["details"]["retry_at"] >= shown["events"][3]["at"][:19]


def test_retries_run_out_into_a_dead_letter_that_releases_the_booked_contact(
        api: Any, sandbox: Any, send_body: Any) -> None:
    from trato.delivery import service

    sandbox.fail_next(ProviderResult.refused("connection refused"), times=service.MAX_ATTEMPTS)
    # E-mail alone: with a second channel allowed the message would fail over to it instead.
    message_id = api.post("/api/v1/messages", json=send_body(channels=["email"])).json()["id"]
    for _ in range(service.MAX_ATTEMPTS - 1):
        service.deliver(message_id)
    shown = api.get(f"/api/v1/messages/{message_id}").json()
    assert shown["state"] == "dead"
    assert shown["attempts"] == service.MAX_ATTEMPTS
    assert _ledger(message_id) == ["released"]
    assert service.deliver(message_id) == "dead"
    assert sandbox.find(message_id) == []


def test_a_permanent_refusal_fails_at_once(api: Any, sandbox: Any, send_body: Any) -> None:
    sandbox.fail_next(ProviderResult.refused("550 no such mailbox", permanent=True))
    message_id = api.post("/api/v1/messages", json=send_body()).json()["id"]
    shown = api.get(f"/api/v1/messages/{message_id}").json()
    assert (shown["state"], shown["attempts"], shown["last_error"]) == ("failed", 1, "550 no such mailbox")
    entry = api.get(f"/api/v1/archive/{shown['archive_entry_id']}").json()
    assert "failed" in [s["status"] for s in entry["statuses"]]


def test_an_ambiguous_answer_is_possibly_sent_and_never_resent(api: Any, sandbox: Any, send_body: Any) -> None:
    from trato.delivery import service

    sandbox.fail_next(ProviderResult.ambiguous("timed out after DATA"))
    message_id = api.post("/api/v1/messages", json=send_body()).json()["id"]
    assert service.deliver(message_id) == "possibly_sent"
    shown = api.get(f"/api/v1/messages/{message_id}").json()
    assert shown["state"] == "possibly_sent"
    assert shown["attempts"] == 1
    assert sandbox.find(message_id) == []
    assert _ledger(message_id) == ["sent"]  # it may have reached the customer: it counts


class _Killed(BaseException):
    """Stands for the worker process dying while the provider is being called."""


class _DiesMidCall:
    name = "dies"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def send(self, message: Any) -> ProviderResult:
        self.inner.send(message)  # the provider took it ...
        raise _Killed  # ... and the worker died before recording the answer


def test_a_worker_killed_during_the_call_leaves_a_possibly_sent_message_not_a_duplicate(
        api: Any, sandbox: Any, send_body: Any) -> None:
    from trato.delivery import service
    from trato.delivery.channels import registry

    sandbox.fail_next(ProviderResult.refused("421 busy"))
    message_id = api.post("/api/v1/messages", json=send_body(channels=["email"])).json()["id"]
    previous = registry.use("email", _DiesMidCall(sandbox))  # type: ignore[arg-type]
    try:
        with pytest.raises(_Killed):
            service.deliver(message_id)  # the retry: the provider takes it, the worker dies
    finally:
        registry.use("email", previous)
    assert len(sandbox.find(message_id)) == 1
    assert _states(message_id)[-1] == "sending"
    # The queue delivers the task again after the crash.
    assert service.deliver(message_id) == "possibly_sent"
    assert len(sandbox.find(message_id)) == 1


@settings(deadline=None)
@given(attempt=st.integers(1, 40), retry_after=st.none() | st.floats(0, 7200), seed=st.integers(0, 2**32))
def test_backoff_grows_with_jitter_within_bounds_and_honours_retry_after(
        attempt: int, retry_after: float | None, seed: int) -> None:
    delay = retry_delay(attempt, retry_after=retry_after, rng=random.Random(seed))
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    assert delay >= ceiling / 2
    assert delay <= max(ceiling, retry_after or 0)
    assert delay >= (retry_after or 0)


def test_a_channel_without_a_usable_adapter_is_retried_not_possibly_sent(
        api: Any, send_body: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from trato.delivery.channels import registry

    monkeypatch.setenv("TRATO_CHANNEL_PROVIDERS", "email=carrier-pigeon")
    previous = registry.use("email", None)
    try:
        message = api.post("/api/v1/messages", json=send_body(channels=["email"])).json()
    finally:
        registry.use("email", previous)
    shown = api.get(f"/api/v1/messages/{message['id']}").json()
    assert shown["state"] == "retrying"
    assert "carrier-pigeon" in shown["last_error"]


def test_the_sweeper_finds_messages_whose_task_was_lost(api: Any, sandbox: Any, send_body: Any) -> None:
    from datetime import timedelta

    from trato.core.clock import utcnow
    from trato.core.db import new_session
    from trato.delivery import service, tasks

    sandbox.fail_next(ProviderResult.refused("421 busy"))
    retrying = api.post("/api/v1/messages", json=send_body()).json()["id"]
    accepted = api.post("/api/v1/messages", json=send_body()).json()["id"]
    with new_session(readonly=True) as s:
        assert service.stuck_messages(s) == []  # the retry is not due yet
        later = utcnow() + timedelta(hours=3)
        assert service.stuck_messages(s, now=later) == [(retrying, "deliver")]  # not the accepted one
    assert accepted != retrying
    # The sweep (run here at once) enqueues; only due messages are picked up.
    assert tasks.sweep_stuck_messages.call_local() == 0
    assert len(sandbox.find(retrying)) == 0
