"""One contract, every adapter: the same table of cases runs against each built-in adapter (and
any adapter added to ADAPTERS below or found through the ``trato.channels`` entry points)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import pytest
from pydantic import BaseModel

from trato.core.channels import CHANNELS
from trato.delivery.channels.base import ChannelAdapter, Limits, OutgoingMessage, ProviderResult

PARTS = {
    "email": {"subject": "Tu factura F-1", "html": "<p>Hola Ana</p>", "text": "Hola Ana", "preheader": ""},
    "sms": {"text": "Hola Ana: tu factura F-1 ya está disponible."},
}
RECIPIENT = {"email": "ana@example.com", "push": "device-token-1", "web": "cus_ANA", "letter": "cus_ANA"}


def _sandbox(request: pytest.FixtureRequest) -> tuple[ChannelAdapter, Callable[[], None]]:
    from trato.delivery.channels.sandbox import Sandbox

    adapter = Sandbox()
    return adapter, lambda: adapter.fail_next(ProviderResult.refused("503 unavailable"))


def _smtp(request: pytest.FixtureRequest) -> tuple[ChannelAdapter, Callable[[], None]]:
    from tests.delivery.smtp_peer import free_port
    from trato.delivery.channels.email import SmtpEmail, SmtpSettings

    adapter = request.getfixturevalue("smtp_adapter")

    def break_it() -> None:  # nothing listens there: connection refused
        adapter.settings = SmtpSettings(host="127.0.0.1", port=free_port(), starttls=False, timeout=2)

    assert isinstance(adapter, SmtpEmail)
    return adapter, break_it


ADAPTERS = {"sandbox": _sandbox, "smtp": _smtp}


def _message(channel: str, n: int = 1) -> OutgoingMessage:
    return OutgoingMessage(message_id=f"msg_CONTRACT{n}", channel=channel, recipient=RECIPIENT.get(channel, "+34612345678"),
                           parts=dict(PARTS.get(channel, PARTS["sms"])), customer_id="cus_ANA")


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> tuple[ChannelAdapter, Callable[[], None]]:
    return ADAPTERS[request.param](request)


def test_it_declares_what_it_is(adapter: tuple[ChannelAdapter, Any]) -> None:
    subject, _ = adapter
    assert subject.name and subject.channels
    assert set(subject.channels) <= set(CHANNELS)
    assert isinstance(subject.capabilities, frozenset)
    assert isinstance(subject.limits, Limits)
    assert issubclass(subject.settings_model, BaseModel)
    assert isinstance(subject.settings, subject.settings_model)


def test_it_is_found_through_the_entry_points(adapter: tuple[ChannelAdapter, Any]) -> None:
    from trato.delivery.channels import registry

    subject, _ = adapter
    declared = {point.name: point.load() for point in entry_points(group=registry.GROUP)}
    assert declared[subject.name] is type(subject)
    assert registry.adapter_classes()[subject.name] is type(subject)


def test_every_channel_it_declares_is_accepted_with_a_provider_id(adapter: tuple[ChannelAdapter, Any]) -> None:
    subject, _ = adapter
    ids = set()
    for n, channel in enumerate(subject.channels):
        result = subject.send(_message(channel, n))
        assert result.outcome == "accepted", result
        assert result.provider_message_id
        ids.add(result.provider_message_id)
    assert len(ids) == len(subject.channels)


def test_a_provider_that_refuses_is_classified_not_raised(adapter: tuple[ChannelAdapter, Any]) -> None:
    subject, break_it = adapter
    break_it()
    result = subject.send(_message(subject.channels[0]))
    assert result.outcome == "refused"
    assert result.error
    assert result.provider_message_id is None


def test_registry_uses_the_configured_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    from trato.core.errors import ConfigurationError
    from trato.delivery.channels import registry
    from trato.delivery.channels.email import SmtpEmail
    from trato.delivery.channels.sandbox import Sandbox

    monkeypatch.delenv("TRATO_SMTP_HOST", raising=False)
    monkeypatch.setenv("TRATO_CHANNEL_PROVIDERS", "sms=sandbox")
    assert registry.configured_providers()["email"] == "sandbox"
    monkeypatch.setenv("TRATO_SMTP_HOST", "mail.example")
    assert registry.configured_providers()["email"] == "smtp"
    monkeypatch.setenv("TRATO_CHANNEL_PROVIDERS", "sms=smtp")
    previous = registry.use("sms", None)
    try:
        with pytest.raises(ConfigurationError):
            registry.adapter_for("sms")
    finally:
        registry.use("sms", previous)
    monkeypatch.setenv("TRATO_CHANNEL_PROVIDERS", "fax")
    with pytest.raises(ConfigurationError):
        registry.configured_providers()
    assert {"smtp": SmtpEmail, "sandbox": Sandbox}.items() <= registry.BUILT_IN.items()
