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
def smtp_adapter(smtp_server: Any) -> Any:
    from trato.delivery.channels.email import SmtpEmail, SmtpSettings

    return SmtpEmail(SmtpSettings(host="127.0.0.1", port=smtp_server.port, starttls=False, timeout=5,
                                  from_address="Banco Ejemplo <avisos@banco.example>"))
