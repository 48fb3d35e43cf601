"""Failover under injected faults: the next provider of the channel after a clear refusal (a real
SMTP connection refused, a 503), never after an ambiguous answer or a refusal of the recipient;
the circuit breaker taking a failing provider out and probing it back; the next channel of the
policy's fallback order when a channel is down; rate limits that postpone without failing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.delivery.test_providers import env  # noqa: F401
from trato.delivery.channels.base import ProviderResult

pytestmark = pytest.mark.usefixtures("immediate_queue")


@pytest.fixture
def circuits() -> Iterator[Any]:
    """The in-process circuits and buckets, emptied, with a clock the test moves and a threshold of 3."""
    from trato.delivery.resilience import health

    state = health()
    previous = (state.threshold, state.cooldown, state.clock)
    now = [1000.0]
    state.reset()
    state.threshold, state.cooldown, state.clock = 3, 30.0, lambda: now[0]
    state.now = now
    yield state
    state.threshold, state.cooldown, state.clock = previous
    state.reset()


def _add(name: str, url: str, channels: list[str], priority: int = 100, **extra: Any) -> Any:
    from trato.core.db import unit_of_work
    from trato.delivery import providers
    from trato.delivery.channels import registry

    with unit_of_work() as session:
        providers.add_provider(session, actor="test", name=name, url=url, channels=channels, priority=priority, **extra)
    return registry.provider(name)


def _send(api: Any, send_body: Any, channels: list[str]) -> dict[str, Any]:
    response = api.post("/api/v1/messages", json=send_body(channels=channels))
    assert response.status_code == 202, response.text
    return api.get(f"/api/v1/messages/{response.json()['id']}").json()


def _closed_port_smtp() -> str:
    from tests.delivery.smtp_peer import free_port

    return f"smtp://127.0.0.1:{free_port()}?tls=none&timeout=2"


def test_a_refused_connection_fails_over_to_the_next_provider_in_the_same_attempt(
        api: Any, send_body: Any, circuits: Any) -> None:
    _add("smtp-down", _closed_port_smtp(), ["email"], priority=1)
    backup = _add("backup", "sandbox://", ["email"], priority=2)
    shown = _send(api, send_body, ["email"])
    assert (shown["state"], shown["provider"], shown["attempts"]) == ("accepted", "backup", 1)
    failover = [e for e in shown["events"] if e["state"] == "failover"]
    assert len(failover) == 1
    assert failover[0]["details"]["from"] == "smtp-down" and failover[0]["details"]["to"] == "backup"
    assert failover[0]["details"]["kind"] == "provider"
    assert "unreachable" in failover[0]["details"]["error"]
    assert [r.message.message_id for r in backup.sent] == [shown["id"]]
    assert circuits.state("smtp-down").failures == 1


def test_no_failover_after_an_ambiguous_answer_or_a_refusal_of_the_recipient(
        api: Any, send_body: Any, circuits: Any) -> None:
    first = _add("first", "sandbox://", ["email"], priority=1)
    second = _add("second", "sandbox://", ["email"], priority=2)
    first.fail_next(ProviderResult.ambiguous("read timeout after the request was sent"))
    shown = _send(api, send_body, ["email"])
    assert (shown["state"], shown["provider"]) == ("possibly_sent", "first")
    first.fail_next(ProviderResult.refused("HTTP 400: invalid number", permanent=True))
    shown = _send(api, send_body, ["email"])
    assert (shown["state"], shown["provider"]) == ("failed", "first")
    assert list(second.sent) == []
    assert not [e for e in shown["events"] if e["state"] == "failover"]


def test_every_provider_refusing_once_retries_on_the_same_channel(api: Any, send_body: Any, circuits: Any) -> None:
    first = _add("first", "sandbox://", ["email"], priority=1)
    second = _add("second", "sandbox://", ["email"], priority=2)
    first.fail_next(ProviderResult.refused("HTTP 503", retry_after=5))
    second.fail_next(ProviderResult.refused("HTTP 429", retry_after=20))
    shown = _send(api, send_body, ["email", "sms"])
    # A blip is retried where the customer asked to be reached; the earliest Retry-After decides when.
    assert (shown["state"], shown["channel"], shown["last_error"]) == ("retrying", "email", "HTTP 429")
    retry = shown["events"][-1]
    assert retry["state"] == "retrying" and retry["details"]["provider"] == "second"


def test_the_circuit_opens_after_refusals_in_a_row_then_one_probe_closes_it(
        api: Any, send_body: Any, circuits: Any) -> None:
    flaky = _add("flaky", "sandbox://", ["email"], priority=1)
    steady = _add("steady", "sandbox://", ["email"], priority=2)
    flaky.fail_next(ProviderResult.refused("HTTP 503"), times=3)
    for _ in range(3):
        assert _send(api, send_body, ["email"])["provider"] == "steady"
    assert circuits.state("flaky").state == "open"

    # Open: flaky is not called at all (it would accept now), the message goes to steady.
    shown = _send(api, send_body, ["email"])
    assert shown["provider"] == "steady"
    assert "circuit open" in [e for e in shown["events"] if e["state"] == "failover"][0]["details"]["error"]
    assert list(flaky.sent) == []

    circuits.now[0] += 31  # past the cool-down: half-open, one probe
    assert circuits.state("flaky").state == "half_open"
    shown = _send(api, send_body, ["email"])
    assert shown["provider"] == "flaky"
    assert circuits.state("flaky").state == "closed"


def test_a_failed_probe_opens_the_circuit_again(api: Any, send_body: Any, circuits: Any) -> None:
    flaky = _add("flaky", "sandbox://", ["email"], priority=1)
    _add("steady", "sandbox://", ["email"], priority=2)
    flaky.fail_next(ProviderResult.refused("HTTP 503"), times=4)
    for _ in range(3):
        _send(api, send_body, ["email"])
    circuits.now[0] += 31
    assert circuits.allow("flaky") == (True, 0.0)  # someone else holds the probe meanwhile
    assert circuits.allow("flaky")[0] is False
    circuits.now[0] += 31  # that probe's worker died: its lease expired
    assert _send(api, send_body, ["email"])["provider"] == "steady"  # the probe was refused
    assert circuits.state("flaky").state == "open"
    assert circuits.state("flaky").retry_in == pytest.approx(30.0)


def test_a_channel_whose_providers_are_all_out_fails_over_to_the_next_allowed_channel(
        api: Any, send_body: Any, circuits: Any) -> None:
    from trato.core.db import new_session
    from trato.policy.models import ContactLedger

    mail = _add("mail", "sandbox://", ["email"])
    texts = _add("texts", "sandbox://", ["sms"])
    mail.fail_next(ProviderResult.refused("HTTP 503"), times=10)
    for _ in range(2):  # two refusals: retried on e-mail, the circuit still closed
        assert _send(api, send_body, ["email", "sms"])["state"] == "retrying"
    shown = _send(api, send_body, ["email", "sms"])  # the third opens the circuit: e-mail is down
    assert (shown["state"], shown["channel"], shown["provider"]) == ("accepted", "sms", "texts")
    moved = [e for e in shown["events"] if e["state"] == "failover" and e["details"]["kind"] == "channel"]
    assert [(e["details"]["from"], e["details"]["to"]) for e in moved] == [("email", "sms")]
    assert [r.message.message_id for r in texts.sent] == [shown["id"]]
    assert texts.sent[0].message.recipient == "+34612345678"
    assert texts.sent[0].message.parts["text"]  # rendered for SMS, not the e-mail's parts
    # The SMS copy is archived as sent; the e-mail copy says why it was not.
    entry = api.get(f"/api/v1/archive/{shown['archive_entry_id']}").json()
    assert entry["channel"] == "sms" and "accepted" in [s["status"] for s in entry["statuses"]]
    # One contact booked for the message: the e-mail's reservation was released, the SMS one sent.
    with new_session(readonly=True) as session:
        rows = session.query(ContactLedger.channel, ContactLedger.status).filter(
            ContactLedger.message_id == shown["id"]).all()
    assert rows == [("sms", "sent")]


def test_retries_run_out_into_the_next_channel_not_a_dead_letter(
        api: Any, sandbox: Any, send_body: Any) -> None:
    from trato.delivery import service

    sandbox.fail_next(ProviderResult.refused("connection refused"), times=service.MAX_ATTEMPTS)
    message_id = api.post("/api/v1/messages", json=send_body(channels=["email", "sms"])).json()["id"]
    for _ in range(service.MAX_ATTEMPTS - 1):
        service.deliver(message_id)
    shown = api.get(f"/api/v1/messages/{message_id}").json()
    assert (shown["state"], shown["channel"], shown["attempts"]) == ("accepted", "sms", 1)
    assert [r.message.channel for r in sandbox.find(message_id)] == ["sms"]


def test_a_channel_the_policy_does_not_allow_is_not_failed_over_to(
        api: Any, sandbox: Any, send_body: Any) -> None:
    from trato.delivery import service

    # Ana has no device token: push is not reachable, so e-mail runs out of retries into a dead letter.
    sandbox.fail_next(ProviderResult.refused("connection refused"), times=service.MAX_ATTEMPTS)
    message_id = api.post("/api/v1/messages", json=send_body(channels=["email", "push"])).json()["id"]
    for _ in range(service.MAX_ATTEMPTS - 1):
        service.deliver(message_id)
    shown = api.get(f"/api/v1/messages/{message_id}").json()
    assert (shown["state"], shown["channel"]) == ("dead", "email")


def test_a_spent_rate_limit_postpones_the_message_without_counting_an_attempt(
        api: Any, send_body: Any, circuits: Any, monkeypatch: pytest.MonkeyPatch, immediate_queue: Any) -> None:
    from trato.core.settings import get_settings
    from trato.delivery import service

    monkeypatch.setattr(get_settings(), "rate_limit_wait_seconds", 0.0)
    slow = _add("slow", "sandbox://", ["email"], max_per_second=0.5)
    first = _send(api, send_body, ["email"])
    assert first["state"] == "accepted"
    second = _send(api, send_body, ["email"])  # the bucket held one token: this one waits for the next
    assert (second["state"], second["attempts"]) == ("queued", 0)
    assert any(task.args == (second["id"],) for task in immediate_queue.scheduled())
    assert [r.message.message_id for r in slow.sent] == [first["id"]]
    circuits.now[0] += 2  # a token later
    assert service.deliver(second["id"]) == "accepted"
    assert api.get(f"/api/v1/messages/{second['id']}").json()["attempts"] == 1


def test_providers_written_in_the_settings_fail_over_in_the_order_written(
        api: Any, send_body: Any, circuits: Any, env: Any) -> None:  # noqa: F811
    from trato.delivery.channels import registry

    env(TRATO_EMAIL_URL=f"{_closed_port_smtp()}#mail-down, sandbox://#mail-spare")
    shown = _send(api, send_body, ["email"])
    assert (shown["state"], shown["provider"]) == ("accepted", "mail-spare")
    assert [(e["details"]["from"], e["details"]["to"]) for e in shown["events"] if e["state"] == "failover"] == [
        ("mail-down", "mail-spare")]
    assert [r.message.message_id for r in registry.provider("mail-spare").sent] == [shown["id"]]  # type: ignore[attr-defined]
