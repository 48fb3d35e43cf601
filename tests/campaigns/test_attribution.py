"""Campaign results as they happen: conversions counted the moment the event is stored (tracking
API, the customer memory's own writes), not outside the window nor for customers the campaign did
not reach, holdout conversions for the holdout; unsubscribes counted however they are made
(one-click List-Unsubscribe from a real SMTP peer, the preference center opened from the message)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.campaigns.conftest import BASE, counted, create, launch, make_people, recipient_ids
from tests.delivery.conftest import _smtp_peer, approve_communication, smtp_adapter, smtp_server  # noqa: F401
from tests.ingest.tracking import basic_auth, iso



def groups_of(campaign_id: str) -> dict[str, list[str]]:
    from trato.campaigns.models import CampaignRecipient
    from trato.core.db import new_session

    found: dict[str, list[str]] = {}
    with new_session(readonly=True) as s:
        for r in s.scalars(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id)
                           .order_by(CampaignRecipient.id)):
            found.setdefault(r.variant or "-", []).append(r.customer_id)
    return found


def email_of(customer_id: str) -> str:
    from trato.core.db import new_session
    from trato.customers import service as customers

    with new_session(readonly=True) as s:
        return str(customers.get_customer(s, customer_id).email)


def track(client: Any, write_key: str, email: str, name: str, message_id: str, at: Any = None) -> None:
    call: dict[str, Any] = {"type": "track", "event": name, "messageId": message_id,
                            "anonymousId": f"anon-{message_id}", "context": {"traits": {"email": email}},
                            "properties": {"total": 30}}
    if at is not None:
        call["timestamp"] = iso(at)
    answer = client.post("/v1/batch", json={"batch": [call]}, headers=basic_auth(write_key))
    assert answer.status_code == 200, answer.text


# -- conversions in real time ---------------------------------------------------------------------


def test_a_conversion_is_counted_the_moment_the_event_arrives_through_the_api(
        client: Any, api: Any, write_key: str, campaign_world: dict[str, Any]) -> None:
    from trato.campaigns.models import CampaignRecipient
    from trato.core.clock import utcnow
    from trato.core.db import new_session, unit_of_work
    from trato.customers import service as customers

    make_people(28, start=300)
    campaign_id = create(campaign_world, holdout_percent=50, conversion_event="Order Completed",
                         conversion_days=7)
    launch(campaign_id)
    groups = groups_of(campaign_id)
    contacted, holdout = groups["A"], groups["holdout"]
    assert len(contacted) >= 4 and len(holdout) >= 2
    [outsider] = make_people(1, start=900)  # not in the campaign's snapshot
    launched = utcnow()

    track(client, write_key, email_of(contacted[0]), "Order Completed", "buy-1")
    # Counted at once: nothing else (no sweep, no results call) has looked at the campaign.
    assert counted(campaign_id, "converted") == {contacted[0]: "A"}

    track(client, write_key, email_of(holdout[0]), "Order Completed", "buy-2")
    track(client, write_key, email_of(outsider), "Order Completed", "buy-3")
    track(client, write_key, email_of(contacted[1]), "Product Viewed", "view-1")  # not the conversion event
    # Before the campaign reached them: outside the window.
    track(client, write_key, email_of(contacted[2]), "Order Completed", "buy-4", at=launched - timedelta(hours=2))
    # Reached ten days ago, with a seven-day window: outside it too.
    with unit_of_work() as s:
        s.execute(update(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id,
                                                  CampaignRecipient.customer_id == contacted[3])
                  .values(processed_at=launched - timedelta(days=10)))
    track(client, write_key, email_of(contacted[3]), "Order Completed", "buy-5")
    # A second purchase, and the first one sent again: still one conversion each.
    track(client, write_key, email_of(contacted[0]), "Order Completed", "buy-6")
    track(client, write_key, email_of(contacted[0]), "Order Completed", "buy-1")
    assert counted(campaign_id, "converted") == {contacted[0]: "A", holdout[0]: "holdout"}

    with new_session(readonly=True) as s:
        entries = [e for e in customers.timeline(s, customer_id=contacted[0]) if e.kind == "campaign_converted"]
    assert [(e.properties["campaign_id"], e.properties["variant"]) for e in entries] == [(campaign_id, "A")]

    # The sweep finds nothing left to do, and the results show the figures.
    from trato.campaigns import results

    with unit_of_work() as s:
        assert results.attribute_conversions(s, campaign_id=campaign_id) == 0
    figures = api.get(f"/api/v1/campaigns/{campaign_id}/results").json()
    [a] = figures["variants"]
    assert (a["contacted"], a["converted"]) == (len(contacted), 1)
    assert (figures["holdout"]["members"], figures["holdout"]["converted"]) == (len(holdout), 1)


def test_conversions_written_by_other_domains_count_at_once_for_every_campaign(
        api: Any, campaign_world: dict[str, Any]) -> None:
    from trato.core.db import unit_of_work
    from trato.customers import service as customers

    first = create(campaign_world, conversion_event="Account Opened")
    launch(first)
    second = create(campaign_world, conversion_event="Account Opened", name="Segunda")
    launch(second)
    other = create(campaign_world, conversion_event="Loan Signed", name="Otra")
    launch(other)
    people = campaign_world["people"]
    with unit_of_work() as s:
        customers.record_event(s, customer_id=people[0], kind="track", name="Account Opened", source_id="crm",
                               message_id="acc-1")
        customers.record_events(s, rows=[{
            "customer_id": people[1], "origin_customer_id": people[1], "source_id": "crm", "message_id": "acc-2",
            "kind": "track", "name": "Account Opened", "channel": None, "department": None,
            "occurred_at": _now(), "received_at": _now(),
            "properties": {}, "context": {}, "revenue_cents": None, "currency": None}])
        customers.record_event(s, customer_id=people[2], kind="page", name="Account Opened", source_id="crm",
                               message_id="page-1")  # a page view of that name is not the event
    assert counted(first, "converted") == counted(second, "converted") == {people[0]: "A", people[1]: "A"}
    assert counted(other, "converted") == {}
    figures = api.get(f"/api/v1/campaigns/{first}/results").json()
    assert [(v["variant"], v["contacted"], v["converted"]) for v in figures["variants"]] == [("A", 12, 2)]


def _now() -> Any:
    from trato.core.clock import utcnow

    return utcnow()


def test_a_campaign_launched_elsewhere_is_seen_within_the_refresh_and_the_sweep_stays_a_backstop(
        campaign_world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from trato.campaigns import attribution, results
    from trato.core.db import unit_of_work
    from trato.customers import service as customers

    campaign_id = create(campaign_world, conversion_event="Order Completed")
    # Another process launched it: this one still holds what it read before.
    monkeypatch.setattr(attribution, "forget_active_after_commit", lambda session: None)
    monkeypatch.setattr(attribution, "REFRESH_SECONDS", 3600.0)
    with unit_of_work() as s:
        attribution.active_conversions(s)  # read now, with the campaign still a draft
    launch(campaign_id)
    buyer = campaign_world["people"][0]
    with unit_of_work() as s:
        customers.record_event(s, customer_id=buyer, kind="track", name="Order Completed", source_id="shop",
                               message_id="o-1")
    assert counted(campaign_id, "converted") == {}  # not seen yet (at most REFRESH_SECONDS)
    with unit_of_work() as s:
        assert results.attribute_conversions(s, campaign_id=campaign_id) == 1  # the sweep's backstop
    attribution.forget_active()  # the refresh comes (every REFRESH_SECONDS)
    with unit_of_work() as s:
        customers.record_event(s, customer_id=campaign_world["people"][1], kind="track", name="Order Completed",
                               source_id="shop", message_id="o-2")
    assert set(counted(campaign_id, "converted")) == {buyer, campaign_world["people"][1]}
    attribution.forget_active()  # nothing read under the long refresh is left for other tests


def test_a_failing_attribution_never_loses_the_event(campaign_world: dict[str, Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from trato.campaigns import attribution
    from trato.core.db import new_session, unit_of_work
    from trato.customers import service as customers

    campaign_id = create(campaign_world, conversion_event="Order Completed")
    launch(campaign_id)

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(attribution, "attribute", broken)
    buyer = campaign_world["people"][0]
    with unit_of_work() as s:
        customers.record_event(s, customer_id=buyer, kind="track", name="Order Completed", source_id="shop",
                               message_id="o-1")
    with new_session(readonly=True) as s:
        assert [e.name for e in customers.timeline(s, customer_id=buyer) if e.kind == "track"] == ["Order Completed"]
    assert counted(campaign_id, "converted") == {}


# -- unsubscribes, however they are made ---------------------------------------------------------


PREFERENCES_HTML = (
    '<html lang="{{ lang }}"><body><p style="color:#222222;background-color:#ffffff">Hola {{ customer.first_name }}'
    '</p><p><a href="https://shop.example.com/">Tienda</a></p>'
    '<p><a href="{{ links.preferences }}">Preferencias</a> · <a href="{{ links.unsubscribe }}">Baja</a></p>'
    '</body></html>'
)


def test_one_click_unsubscribe_from_the_header_counts_once_for_the_campaign(
        client: Any, api: Any, campaign_world: dict[str, Any], smtp_adapter: Any, smtp_server: Any) -> None:
    from trato.delivery.channels import registry

    campaign_id = create(campaign_world)
    previous = registry.use("email", smtp_adapter)
    try:
        launch(campaign_id)
    finally:
        registry.use("email", previous)
    assert len(smtp_server.received) == 12
    by_customer = {}
    for received in smtp_server.received:
        header = received.message["List-Unsubscribe"]
        assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        by_customer[received.recipients[0]] = header.strip("<>").removeprefix(BASE)
    people = campaign_world["people"]
    first, second = by_customer[email_of(people[0])], by_customer[email_of(people[1])]
    assert client.get(first).status_code == 200  # the page only asks: nothing changes, nothing counts
    assert counted(campaign_id, "unsubscribed") == {}
    for _ in range(2):  # the mail client may post twice
        answer = client.post(first, data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 200, answer.text
    assert client.post(second, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert counted(campaign_id, "unsubscribed") == {people[0]: "A", people[1]: "A"}
    from trato.campaigns.pipeline import message_id
    from trato.core.db import new_session
    from trato.customers import service as customers

    with new_session(readonly=True) as s:
        entries = customers.timeline(s, customer_id=people[0])
    [withdrawn] = [e for e in entries if e.kind == "consent" and e.properties["state"] == "denied"]
    assert withdrawn.properties["via_message_id"] == message_id(campaign_id, recipient_ids(campaign_id)[people[0]])
    assert [e.properties["campaign_id"] for e in entries if e.kind == "message_unsubscribed"] == [campaign_id]
    [row] = api.get(f"/api/v1/campaigns/{campaign_id}/results").json()["by_variant_channel"]
    assert (row["variant"], row["channel"], row["unsubscribed"]) == ("A", "email", 2)


def test_an_unsubscribe_in_the_preference_center_opened_from_the_message_counts(
        client: Any, api: Any, campaign_world: dict[str, Any]) -> None:
    from trato.core.db import unit_of_work
    from trato.policy import service as policy

    with unit_of_work() as s:
        communication = approve_communication(
            s, key="newsletter", purpose="marketing", channels=["email"], sample_data={}, languages=["es"],
            content={"email": {"es": {"subject": "Novedades", "body_html": PREFERENCES_HTML}}})
    campaign_id = create(campaign_world, communication=communication.key)
    launch(campaign_id)
    sent = {r.message.customer_id: r.message for r in campaign_world["sandbox"].sent}
    people = campaign_world["people"]
    html = str(sent[people[0]].parts["html"])
    [preferences] = re.findall(r'href="(http://127\.0\.0\.1:8000/p/[^"]+)"', html)
    assert preferences.removeprefix(BASE + "/p/") != policy.preference_url(people[0]).removeprefix(BASE + "/p/")
    page = client.get(preferences.removeprefix(BASE))
    kept = {name: "1" for name in re.findall(r'name="(consent\.[^"]+)" value="1"[^>]*checked', page.text)}
    assert page.status_code == 200 and "consent.marketing.offers.email" in kept, page.text
    # Only the frequency changes: nothing is withdrawn, nothing is counted.
    assert client.post(preferences.removeprefix(BASE), data={**kept, "frequency": "weekly"},
                       follow_redirects=False).status_code == 303
    assert counted(campaign_id, "unsubscribed") == {}
    # Marketing offers by e-mail switched off: counted for the (marketing) campaign, once.
    withdrawn = {k: v for k, v in kept.items() if k != "consent.marketing.offers.email"}
    for _ in range(2):
        assert client.post(preferences.removeprefix(BASE), data=withdrawn,
                           follow_redirects=False).status_code == 303
    assert counted(campaign_id, "unsubscribed") == {people[0]: "A"}
    # The same page reached without the message (an old link) changes consents and counts nothing.
    other = policy.preference_url(people[1]).removeprefix(BASE)
    assert client.post(other, data={}, follow_redirects=False).status_code == 303
    assert counted(campaign_id, "unsubscribed") == {people[0]: "A"}
    # The e-mail's own unsubscribe link is still tracked on its way to the page.
    [row] = api.get(f"/api/v1/campaigns/{campaign_id}/results").json()["by_variant_channel"]
    assert row["unsubscribed"] == 1


def test_older_links_without_the_message_still_work(client: Any, campaign_world: dict[str, Any]) -> None:
    from trato.policy import service as policy

    customer = campaign_world["people"][0]
    old = policy.unsubscribe_url(customer, "marketing", None, "email").removeprefix(BASE)
    assert client.post(old, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert client.get(policy.preference_url(customer).removeprefix(BASE)).status_code == 200


def test_the_sweep_attributes_every_campaign_still_inside_its_conversion_window(
        campaign_world: dict[str, Any]) -> None:
    """A 90-day window outlives a month: the sweep follows each campaign's own window."""
    from trato.campaigns import results
    from trato.campaigns.models import Campaign
    from trato.core.clock import utcnow
    from trato.core.db import new_session, unit_of_work

    now = utcnow()
    shapes = {  # name: (conversion days, started, finished) — None: not launched / still running
        "inside a long window": (90, now - timedelta(days=80), now - timedelta(days=60)),
        "window over": (30, now - timedelta(days=40), now - timedelta(days=31)),
        "still running": (7, now - timedelta(days=120), None),
        "just finished": (1, now - timedelta(hours=3), now - timedelta(hours=2)),
        "never launched": (7, None, None),
    }
    ids = {}
    for name, (days, started, finished) in shapes.items():
        campaign_id = create(campaign_world, name=name, conversion_event="Order Completed", conversion_days=days)
        with unit_of_work() as s:
            s.execute(update(Campaign).where(Campaign.id == campaign_id).values(
                started_at=started, finished_at=finished, state="done" if finished else "running"))
        ids[name] = campaign_id
    create(campaign_world, name="no conversion event")
    with new_session(readonly=True) as s:
        found = set(results.recent_ids(s))
    assert found == {ids["inside a long window"], ids["still running"], ids["just finished"]}


def test_a_recipient_merged_into_another_profile_still_converts_for_the_campaign(
        campaign_world: dict[str, Any]) -> None:
    """The recipient row keeps the profile it was sent to; the purchase comes under the profile it
    was merged into since (and that one into a third): counted at once, and by the sweep."""
    from trato.campaigns import results
    from trato.core.clock import utcnow
    from trato.core.db import unit_of_work
    from trato.customers import service as customers

    campaign_id = create(campaign_world, conversion_event="Order Completed", conversion_days=7)
    launch(campaign_id)
    first, second = campaign_world["people"][:2]
    with unit_of_work() as s:
        app_user = customers.create_customer(s, traits={}, identities=[("user_id", "u-1")], actor="test").id
        shop_user = customers.create_customer(s, traits={}, identities=[("user_id", "u-2")], actor="test").id
        customers.merge(s, survivor_id=app_user, merged_id=first, actor="test")
        customers.merge(s, survivor_id=shop_user, merged_id=second, actor="test")
        customers.merge(s, survivor_id=app_user, merged_id=shop_user, actor="test", force=True)
        assert customers.current_profiles(s, [first, second, app_user]) == {
            first: app_user, second: app_user, app_user: app_user}
        assert sorted(customers.merged_into(s, [app_user])[app_user]) == sorted([app_user, first, shop_user, second])
    with unit_of_work() as s:
        customers.record_event(s, customer_id=app_user, kind="track", name="Order Completed", source_id="test",
                               message_id="order-1", occurred_at=utcnow())
    assert counted(campaign_id, "converted") == {first: "A", second: "A"}

    # The sweep finds the same purchases through the profile that holds them.
    from trato.campaigns.models import CampaignEvent

    with unit_of_work() as s:
        s.execute(CampaignEvent.__table__.delete().where(CampaignEvent.campaign_id == campaign_id))
    with unit_of_work() as s:
        assert results.attribute_conversions(s, campaign_id=campaign_id) == 2
    assert counted(campaign_id, "converted") == {first: "A", second: "A"}
