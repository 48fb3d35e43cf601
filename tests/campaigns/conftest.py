"""Campaign fixtures: customers of Madrid with and without consent, a segment of them, an approved
marketing communication with a link, the queue in immediate mode and a sandbox provider."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.console.conftest import signed_in  # noqa: F401
from tests.delivery.conftest import approve_communication, immediate_queue, sandbox  # noqa: F401

BASE = "http://127.0.0.1:8000"  # the tests' TRATO_BASE_URL
MADRID = {"type": "trait", "trait": "city", "op": "eq", "value": "Madrid"}
CREATOR, APPROVER = "token:creator", "token:approver"

EMAIL_HTML = (
    '<html lang="{{ lang }}"><body><p style="color:#222222;background-color:#ffffff">Hola {{ customer.first_name }},'
    ' rebajas de primavera: {{ data.discount }}% en todo.</p>'
    '<p><a href="https://shop.example.com/rebajas?x=1&amp;y=2">Ver ofertas</a></p>'
    '<p><a href="{{ links.unsubscribe }}">Darse de baja</a></p></body></html>'
)
CONTENT: dict[str, Any] = {
    "email": {"es": {"subject": "Rebajas {{ customer.first_name }}", "body_html": EMAIL_HTML},
              "en": {"subject": "Sale {{ customer.first_name }}", "body_html": EMAIL_HTML.replace("Hola", "Hi")}},
    "sms": {"es": {"text": "Hola {{ customer.first_name }}: rebajas {{ data.discount }}%"},
            "en": {"text": "Hi {{ customer.first_name }}: sale {{ data.discount }}%"}},
}


@pytest.fixture
def policy_ready(database_url: str) -> None:
    """The policy's defaults without quiet hours (tests run at any hour); a test adds its own."""
    from trato.core.db import unit_of_work
    from trato.policy import service as policy

    with unit_of_work() as s:
        policy.install_defaults(s)
        for rule in policy.list_quiet_hours(s):
            policy.delete_quiet_hours(s, purpose=rule.purpose, channel=rule.channel, actor="test")


def make_people(n: int, *, consent: bool = True, start: int = 0) -> list[str]:
    """``n`` customers of Madrid with an e-mail (and marketing consent on e-mail when ``consent``)."""
    from trato.core.db import unit_of_work
    from trato.customers import service as customers
    from trato.policy import service as policy

    ids = []
    with unit_of_work() as s:
        for i in range(start, start + n):
            c = customers.create_customer(s, traits={"first_name": f"Cliente{i}", "city": "Madrid", "locale": "es-ES"},
                                          identities=[("email", f"c{i}@example.com")], actor="test")
            if consent:
                policy.set_consent(s, customer_id=c.id, channel="email", purpose="marketing", state="granted",
                                   source="form", actor="test")
            ids.append(c.id)
    return ids


@pytest.fixture
def campaign_world(policy_ready: None, sandbox: Any, immediate_queue: Any) -> dict[str, Any]:
    """12 customers with consent, a segment of Madrid and an approved marketing 'spring-sale'."""
    from trato.audiences import service as audiences
    from trato.core.db import unit_of_work

    people = make_people(12)
    with unit_of_work() as s:
        communication = approve_communication(s, key="spring-sale", purpose="marketing", content=CONTENT,
                                              channels=["email", "sms"], sample_data={"discount": 20})
        segment = audiences.create_segment(s, name="Madrid", definition=MADRID, actor="test")
        return {"people": people, "communication": communication.key, "communication_id": communication.id,
                "segment_id": segment.id, "sandbox": sandbox}


@pytest.fixture
def no_crash() -> Iterator[None]:
    from trato.campaigns import pipeline

    yield
    pipeline.crash_point = None


def create(world: dict[str, Any], **fields: Any) -> str:
    from trato.campaigns import service
    from trato.core.db import unit_of_work

    values: dict[str, Any] = {"name": "Rebajas de primavera", "segment_id": world["segment_id"],
                              "communication": world["communication"], "channels": ["email"],
                              "data": {"discount": 20}}
    values.update(fields)
    with unit_of_work() as s:
        campaign = service.create_campaign(s, actor=CREATOR, **values)
        if campaign.purpose == "marketing":
            service.approve(s, campaign_id=campaign.id, actor=APPROVER)
        return campaign.id


def launch(campaign_id: str) -> None:
    from trato.campaigns import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        service.launch(s, campaign_id=campaign_id, actor=CREATOR)


def counted(campaign_id: str, kind: str) -> dict[str, str | None]:
    """Customers with a ``kind`` event of the campaign, and the variant it was counted for."""
    from sqlalchemy import select

    from trato.campaigns.models import CampaignEvent
    from trato.core.db import new_session

    with new_session(readonly=True) as s:
        return {e.customer_id: e.variant for e in s.scalars(select(CampaignEvent).where(
            CampaignEvent.campaign_id == campaign_id, CampaignEvent.kind == kind))}


def recipient_ids(campaign_id: str) -> dict[str, int]:
    """Each customer's row in the campaign's recipients (what its message id is made from)."""
    import sqlalchemy as sa

    from trato.campaigns.models import CampaignRecipient
    from trato.core.db import new_session

    with new_session(readonly=True) as s:
        return dict(s.execute(sa.select(CampaignRecipient.customer_id, CampaignRecipient.id).where(
            CampaignRecipient.campaign_id == campaign_id)).all())
