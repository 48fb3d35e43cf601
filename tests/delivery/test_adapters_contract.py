"""One contract, every adapter: the same table of cases runs against each built-in adapter (and
any adapter added to ADAPTERS below or found through the ``trato.channels`` entry points)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from trato.core.channels import CHANNELS
from trato.delivery.channels.base import ChannelAdapter, Limits, OutgoingMessage, ProviderResult

PARTS = {
    "email": {"subject": "Tu factura F-1", "html": "<p>Hola Ana</p>", "text": "Hola Ana", "preheader": ""},
    "sms": {"text": "Hola Ana: tu factura F-1 ya está disponible."},
    "voice": {"ssml": '<speak xml:lang="es-ES">Hola Ana. <break time="300ms"/>Tu factura F-1 está lista.</speak>'},
    "push": {"title": "Tu factura F-1", "body": "Ya está disponible: 12,50 €", "image": "",
             "deep_link": "https://banco.example/facturas/F-1"},
}
_WA_TEMPLATE = {"name": "contract_check", "language": "es", "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hola {{1}}: tu factura F-1 ya está disponible."}]}
PARTS["whatsapp"] = {  # what the archive holds for a WhatsApp template (content.channel_parts.whatsapp)
    "template": orjson.dumps(_WA_TEMPLATE).decode(),
    "params": orjson.dumps({"header": [], "body": ["Ana"]}).decode(),
    "preview": orjson.dumps({"header": None, "body": "Hola Ana: tu factura F-1 ya está disponible.",
                             "footer": None, "buttons": []}).decode(),
    "payload": orjson.dumps({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34612345678",
                             "type": "template", "template": {
                                 "name": "contract_check", "language": {"code": "es"},
                                 "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]}
                             }).decode(),
}
PARTS["webhook"] = {"event_type": "invoice.ready", "text": "Hola Ana", "data": '{"invoice":"F-1"}'}
RECIPIENT = {"email": "ana@example.com", "push": "device-token-1", "web": "cus_ANA", "letter": "cus_ANA",
             "webhook": "cus_ANA"}


def _letter_parts() -> dict[str, str | bytes]:
    import io

    import pypdfium2

    document = pypdfium2.PdfDocument.new()
    document.new_page(595, 842)
    buffer = io.BytesIO()
    document.save(buffer)
    return {"title": "Tu factura F-1", "html": "<p>Hola Ana</p>", "pdf": buffer.getvalue()}


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


def _whatsapp(request: pytest.FixtureRequest) -> tuple[ChannelAdapter, Callable[[], None]]:
    from tests.delivery.smtp_peer import free_port
    from tests.fakes import meta
    from trato.delivery.channels.whatsapp import WhatsAppCloud, WhatsAppSettings

    fake = meta.running()
    fake.reset()
    fake.register(_WA_TEMPLATE)
    adapter = WhatsAppCloud(WhatsAppSettings(token=fake.token, phone_number_id=fake.phone_number_id,
                                             base_url=fake.url, timeout=5))
    request.addfinalizer(adapter.close)

    def break_it() -> None:  # nothing listens there: connection refused
        adapter.settings = adapter.wa.model_copy(update={"base_url": f"http://127.0.0.1:{free_port()}"})

    return adapter, break_it


def _webpush(request: pytest.FixtureRequest) -> tuple[ChannelAdapter, Callable[[], None]]:
    from tests.fakes.server import Fault
    from trato.core.db import unit_of_work
    from trato.customers import service as customers
    from trato.delivery import push_devices

    adapter, service = request.getfixturevalue("webpush_adapter"), request.getfixturevalue("webpush_service")
    request.getfixturevalue("database_url")
    with unit_of_work() as s:  # a browser subscribed with the adapter's key, registered for Ana
        ana = customers.create_customer(s, traits={"first_name": "Ana"}, actor="test", identities=[])
        registration = push_devices.register(s, customer_id=ana.id, platform="webpush", actor="test",
                                             subscription=service.subscribe(adapter.public_key).subscription())
    request.getfixturevalue("monkeypatch").setitem(RECIPIENT, "push", registration.id)
    return adapter, lambda: service.misbehave(Fault(status=503, body={"code": 503, "errno": 202,
                                                                      "error": "Service Unavailable"}))


def _fcm(request: pytest.FixtureRequest) -> tuple[ChannelAdapter, Callable[[], None]]:
    from tests.delivery.smtp_peer import free_port

    adapter, service = request.getfixturevalue("fcm_adapter"), request.getfixturevalue("fcm_service")
    request.getfixturevalue("monkeypatch").setitem(RECIPIENT, "push", service.install_app())

    def break_it() -> None:  # FCM itself unreachable (the token endpoint still answers)
        adapter.settings = adapter.settings.model_copy(update={"base_url": f"http://127.0.0.1:{free_port()}"})

    return adapter, break_it


def _unreachable(adapter: ChannelAdapter) -> Callable[[], None]:
    from tests.delivery.smtp_peer import free_port

    def break_it() -> None:  # nothing listens there: connection refused
        adapter.settings = adapter.settings.model_copy(update={"base_url": f"http://127.0.0.1:{free_port()}"})

    return break_it


def _twilio(request: pytest.FixtureRequest, kind: str = "sms") -> tuple[ChannelAdapter, Callable[[], None]]:
    from tests.delivery.conftest import twilio_settings
    from trato.delivery.channels.twilio import TwilioSms, TwilioVoice

    adapter = (TwilioSms if kind == "sms" else TwilioVoice)(twilio_settings(request.getfixturevalue("twilio_fake")))
    request.addfinalizer(adapter.close)
    return adapter, _unreachable(adapter)


def _infobip(request: pytest.FixtureRequest) -> tuple[ChannelAdapter, Callable[[], None]]:
    from tests.delivery.conftest import infobip_settings
    from trato.delivery.channels.infobip import InfobipSms

    adapter = InfobipSms(infobip_settings(request.getfixturevalue("infobip_fake")))
    request.addfinalizer(adapter.close)
    return adapter, _unreachable(adapter)


def _webhook(request: pytest.FixtureRequest) -> tuple[ChannelAdapter, Callable[[], None]]:
    from pydantic import SecretStr

    from tests.delivery.conftest import WEBHOOK_SECRET
    from tests.delivery.smtp_peer import free_port
    from trato.delivery.channels.webhook import Webhook, WebhookSettings

    receiver = request.getfixturevalue("receiver")
    adapter = Webhook(WebhookSettings(url=receiver.url, secret=SecretStr(WEBHOOK_SECRET), allow_private=True,
                                      timeout=5))
    request.addfinalizer(adapter.close)

    def break_it() -> None:  # nothing listens there: connection refused
        adapter.settings = adapter.settings.model_copy(update={"url": f"http://127.0.0.1:{free_port()}/hook"})
        adapter.close()

    return adapter, break_it


def _printhouse(request: pytest.FixtureRequest) -> tuple[ChannelAdapter, Callable[[], None]]:
    from trato.delivery.channels.letter import PrintHouse, PrintHouseSettings

    request.getfixturevalue("database_url")
    folder = request.getfixturevalue("tmp_path")
    adapter = PrintHouse(PrintHouseSettings(drop=f"file://{folder}"))

    def break_it() -> None:  # no drop configured: nothing can reach a print house
        adapter.settings = PrintHouseSettings()

    return adapter, break_it


ADAPTERS = {"sandbox": _sandbox, "smtp": _smtp, "whatsapp": _whatsapp, "webpush": _webpush, "fcm": _fcm,
            "twilio": _twilio, "twilio_voice": lambda r: _twilio(r, "voice"), "infobip": _infobip,
            "webhook": _webhook, "printhouse": _printhouse}


def _message(channel: str, n: int = 1) -> OutgoingMessage:
    return OutgoingMessage(message_id=f"msg_CONTRACT{n}", channel=channel, recipient=RECIPIENT.get(channel, "+34612345678"),
                           parts=_letter_parts() if channel == "letter" else dict(PARTS.get(channel, PARTS["sms"])),
                           customer_id="cus_ANA")


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
