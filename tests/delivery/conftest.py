"""Delivery fixtures: the policy's defaults, a customer, an approved communication, the queue in
immediate mode (tasks run when enqueued, scheduled ones wait) and a fresh sandbox provider."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.content.factory import make_communication

AUTHOR, REVIEWER = "token:author", "token:reviewer"


@pytest.fixture
def immediate_queue() -> Iterator[Any]:
    from trato.core.queue import huey

    previous = huey.immediate
    huey.immediate = True
    yield huey
    huey.immediate = previous


@pytest.fixture
def sandbox() -> Iterator[Any]:
    """One sandbox sends every channel for the test; the configured adapters come back after."""
    from trato.core.channels import CHANNELS
    from trato.delivery.channels import registry
    from trato.delivery.channels.sandbox import Sandbox

    from trato.delivery.resilience import health

    adapter = Sandbox()
    previous = {channel: registry.use(channel, adapter) for channel in CHANNELS}
    health().reset()  # no provider's circuit or rate limit carries over from another test
    yield adapter
    for channel in CHANNELS:
        registry.use(channel, previous[channel])
    health().reset()


@pytest.fixture
def policy_defaults(database_url: str) -> None:
    from trato.core.db import unit_of_work
    from trato.policy import service

    with unit_of_work() as s:
        service.install_defaults(s)


def approve_communication(session: Any, **fields: Any) -> Any:
    """A communication with an approved version, through the four-eyes flow."""
    from trato.content import service

    communication = make_communication(session, actor=AUTHOR, **fields)
    version = service.get_version(session, communication.latest_version_id)
    service.submit(session, version_id=version.id, actor=AUTHOR)
    warnings = sorted({f["code"] for f in version.findings or [] if f.get("severity") == "warning"})
    service.approve(session, version_id=version.id, actor=REVIEWER, acknowledge=warnings)
    return communication


@pytest.fixture
def world(policy_defaults: None) -> dict[str, str]:
    """Ana (e-mail and phone, Spanish) and an approved transactional 'invoice-ready'."""
    from trato.core.db import unit_of_work
    from trato.customers import service as customers

    with unit_of_work() as s:
        ana = customers.create_customer(
            s, traits={"first_name": "Ana", "locale": "es-ES"}, actor="test",
            identities=[("email", "ana@example.com"), ("phone", "+34612345678"), ("user_id", "u-1")],
        )
        communication = approve_communication(s)
        return {"customer_id": ana.id, "communication_id": communication.id, "key": communication.key}


@pytest.fixture
def send_body(world: dict[str, str]) -> Callable[..., dict[str, Any]]:
    def body(**extra: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {"customer": {"id": world["customer_id"]}, "communication": world["key"],
                                   "data": {"invoice": "F-1", "amount": 12.5}, "channels": ["email", "sms"]}
        payload.update(extra)
        return payload

    return body


@pytest.fixture(scope="session")
def _smtp_peer() -> Iterator[tuple[Any, Any]]:
    from tests.delivery import smtp_peer

    controller, mailbox = smtp_peer.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture
def smtp_server(_smtp_peer: tuple[Any, Any]) -> Iterator[Any]:
    """The loopback SMTP server's mailbox (emptied for each test); ``.port`` is where it listens."""
    controller, mailbox = _smtp_peer
    mailbox.reset()
    mailbox.port = controller.port
    yield mailbox
    mailbox.reset()


@pytest.fixture
def smtp_adapter(smtp_server: Any) -> Iterator[Any]:
    """The SMTP adapter pointed at the loopback server; its pooled connections are closed after."""
    from trato.delivery.channels.email import SmtpEmail, SmtpSettings

    adapter = SmtpEmail(SmtpSettings(host="127.0.0.1", port=smtp_server.port, starttls=False, timeout=5,
                                     from_address="Banco Ejemplo <avisos@banco.example>"))
    yield adapter
    adapter.close()


# -- push: a Web Push service and FCM on loopback (tests/fakes), and adapters pointed at them -------


@pytest.fixture(scope="session")
def _webpush_service() -> Iterator[Any]:
    from tests.fakes.webpush import WebPushService

    service = WebPushService()
    yield service
    service.stop()


@pytest.fixture
def webpush_service(_webpush_service: Any) -> Iterator[Any]:
    """The loopback push service, emptied for each test (``subscribe()`` plays a browser)."""
    _webpush_service.reset()
    yield _webpush_service
    _webpush_service.reset()


@pytest.fixture(scope="session")
def vapid_keys() -> tuple[str, str]:
    from tests.fakes.webpush import new_vapid_key

    return new_vapid_key()


@pytest.fixture
def webpush_adapter(webpush_service: Any, vapid_keys: tuple[str, str]) -> Iterator[Any]:
    from pydantic import SecretStr

    from trato.delivery.channels.webpush import WebPush, WebPushSettings

    adapter = WebPush(WebPushSettings(vapid_private_key=SecretStr(vapid_keys[0]), subject="mailto:ops@banco.example",
                                      allow_private=True, timeout=2, default_url="https://banco.example/app"))
    yield adapter
    adapter.close()


@pytest.fixture(scope="session")
def _fcm_service() -> Iterator[Any]:
    from tests.fakes.fcm import FcmService

    service = FcmService()
    yield service
    service.stop()


@pytest.fixture
def fcm_service(_fcm_service: Any) -> Iterator[Any]:
    """Google's token endpoint and FCM v1 on loopback, emptied for each test (``install_app()``)."""
    _fcm_service.reset()
    yield _fcm_service
    _fcm_service.reset()


@pytest.fixture
def fcm_adapter(fcm_service: Any) -> Iterator[Any]:
    from pydantic import SecretStr

    from trato.delivery.channels.fcm import Fcm, FcmSettings

    adapter = Fcm(FcmSettings(project_id=fcm_service.project, credentials=SecretStr(fcm_service.service_account()),
                              base_url=fcm_service.origin, timeout=2))
    yield adapter
    adapter.close()
# -- providers' HTTP APIs faked on loopback (one server each per test process) ---------------------


@pytest.fixture(scope="session")
def _twilio_server() -> Iterator[Any]:
    from tests.fakes.twilio import FakeTwilio

    fake = FakeTwilio()
    yield fake
    fake.stop()


@pytest.fixture
def twilio_fake(_twilio_server: Any) -> Iterator[Any]:
    """The fake Twilio, emptied for the test."""
    _twilio_server.reset()
    yield _twilio_server
    _twilio_server.reset()


@pytest.fixture(scope="session")
def _infobip_server() -> Iterator[Any]:
    from tests.fakes.infobip import FakeInfobip

    fake = FakeInfobip()
    yield fake
    fake.stop()


@pytest.fixture
def infobip_fake(_infobip_server: Any) -> Iterator[Any]:
    """The fake Infobip, emptied for the test."""
    _infobip_server.reset()
    yield _infobip_server
    _infobip_server.reset()


def twilio_settings(fake: Any, **extra: Any) -> Any:
    from trato.delivery.channels.twilio import TwilioSettings

    fields: dict[str, Any] = {"account_sid": fake.account_sid, "auth_token": fake.auth_token,
                              "from_number": "+34911000000", "base_url": fake.url, "timeout": 5}
    return TwilioSettings(**{**fields, **extra})


INFOBIP_SECRET = "s3cr3t-hook-token-0123456789"


def infobip_settings(fake: Any, **extra: Any) -> Any:
    from trato.delivery.channels.infobip import InfobipSettings

    fields: dict[str, Any] = {"api_key": fake.api_key, "base_url": fake.url, "sender": "BancoEj",
                              "webhook_secret": INFOBIP_SECRET, "timeout": 5}
    return InfobipSettings(**{**fields, **extra})
WEBHOOK_SECRET = "whsec_" + "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # base64 of bytes 0..31


@pytest.fixture(scope="session")
def _webhook_receiver() -> Iterator[Any]:
    from tests.fakes import webhook_receiver

    receiver = webhook_receiver.start(WEBHOOK_SECRET)
    yield receiver
    webhook_receiver.stop(receiver)


@pytest.fixture
def receiver(_webhook_receiver: Any) -> Iterator[Any]:
    """A company's webhook endpoint on loopback that verifies the Standard Webhooks signature."""
    _webhook_receiver.reset()
    yield _webhook_receiver
    _webhook_receiver.reset()
