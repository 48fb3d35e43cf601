"""The campaigns API: four-eyes approval, pre-flight reasons with samples, test sends archived as
tests, tracking links that cannot be forged, and results against the holdout."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.campaigns.conftest import APPROVER, CREATOR, create, launch, make_people


def body(world: dict[str, Any], **extra: Any) -> dict[str, Any]:
    found = {"name": "Rebajas", "segment_id": world["segment_id"], "communication": world["communication"],
             "channels": ["email"], "data": {"discount": 20}}
    found.update(extra)
    return found


def test_create_approve_and_send_through_the_api(api: Any, campaign_world: dict[str, Any]) -> None:
    created = api.post("/api/v1/campaigns", json=body(campaign_world))
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert campaign["state"] == "draft" and campaign["purpose"] == "marketing"
    refused = api.post(f"/api/v1/campaigns/{campaign['id']}/send")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "approval_required"
    own = api.post(f"/api/v1/campaigns/{campaign['id']}/approve")  # the same token created it
    assert own.status_code == 403 and own.json()["error"]["code"] == "self_approval"

    from trato.campaigns import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        service.approve(s, campaign_id=campaign["id"], actor=APPROVER)
    sent = api.post(f"/api/v1/campaigns/{campaign['id']}/send")
    assert sent.status_code == 200, sent.text
    progress = api.get(f"/api/v1/campaigns/{campaign['id']}/progress").json()
    assert progress["state"] == "done" and progress["processed"] == 12 and progress["states"] == {"sent": 12}
    assert api.get("/api/v1/campaigns").json()["items"][0]["id"] == campaign["id"]


def test_bad_input_is_a_clear_4xx(api: Any, campaign_world: dict[str, Any]) -> None:
    cases = [
        (body(campaign_world, channels=["pigeon"]), "invalid_campaign"),
        (body(campaign_world, schedule="local"), "invalid_campaign"),
        (body(campaign_world, variants=[{"communication": campaign_world["communication"], "split": 60}]),
         "invalid_campaign"),
        (body(campaign_world, communication="nope"), "communication_not_found"),
        (body(campaign_world, segment_id="seg_x"), "segment_not_found"),
    ]
    for payload, code in cases:
        answer = api.post("/api/v1/campaigns", json=payload)
        assert 400 <= answer.status_code < 500 and answer.json()["error"]["code"] == code, (payload, answer.text)
    assert api.get("/api/v1/campaigns/cmp_missing").status_code == 404


def test_preflight_counts_channels_and_exclusions_with_samples(api: Any, campaign_world: dict[str, Any]) -> None:
    from trato.core.db import unit_of_work
    from trato.customers import service as customers
    from trato.policy import service as policy

    unconsented = make_people(2, consent=False, start=50)
    with unit_of_work() as s:
        policy.add_suppression(s, kind="email", value="c1@example.com", reason="complaint", actor="test")
        phone_only = customers.create_customer(s, traits={"first_name": "Sin", "city": "Madrid"},
                                               identities=[("phone", "+34600000099")], actor="test").id
        policy.set_consent(s, customer_id=phone_only, channel="email", purpose="marketing", state="granted",
                           source="form", actor="test")
    campaign = api.post("/api/v1/campaigns", json=body(campaign_world)).json()
    found = api.post(f"/api/v1/campaigns/{campaign['id']}/preflight").json()
    assert found["total"] == 15 and found["holdout"] == 0
    assert found["send"] == {"email": 11}
    assert found["excluded"] == {"no_consent": 2, "suppressed": 1, "no_reachable_identity": 1}
    assert sorted(found["samples"]["no_consent"]) == sorted(unconsented)
    assert found["samples"]["no_reachable_identity"] == [phone_only]
    assert found["approval_required"] is True


def test_test_send_goes_to_the_seeds_archived_as_tests(api: Any, campaign_world: dict[str, Any]) -> None:
    from trato.archive.models import ArchivedMessage
    from trato.core.db import new_session

    campaign = api.post("/api/v1/campaigns", json=body(campaign_world, seeds=["qa@empresa.example"])).json()
    customer = campaign_world["people"][3]
    answer = api.post(f"/api/v1/campaigns/{campaign['id']}/test-send", json={"customer_ids": [customer]})
    assert answer.status_code == 200, answer.text
    [row] = answer.json()["items"]
    assert row["seed"] == "qa@empresa.example" and row["outcome"] == "accepted"
    [record] = list(campaign_world["sandbox"].sent)
    assert record.message.recipient == "qa@empresa.example" and "Cliente3" in str(record.message.parts["subject"])
    assert "[TEST A]" in str(record.message.parts["subject"])
    with new_session(readonly=True) as s:
        entries = list(s.scalars(select(ArchivedMessage)))
        assert [(e.is_test, e.recipient, e.customer_id) for e in entries] == [(True, "qa@empresa.example", customer)]


def _links(html: str) -> dict[str, list[str]]:
    import re

    found = re.findall(r'(?:href|src)="(http://[^"]+/t/(o|c)/[^"]+)"', html)
    out: dict[str, list[str]] = {"o": [], "c": []}
    for url, kind in found:
        out[kind].append(url.replace("&amp;", "&"))
    return out


def test_tracking_links_count_opens_clicks_and_unsubscribes_and_refuse_tampering(
        client: Any, api: Any, campaign_world: dict[str, Any]) -> None:
    campaign_id = create(campaign_world)
    launch(campaign_id)
    first = next(r for r in campaign_world["sandbox"].sent)
    links = _links(str(first.message.parts["html"]))
    assert len(links["o"]) == 1 and len(links["c"]) == 2
    path = links["c"][0].split("testserver", 1)[-1] if "testserver" in links["c"][0] else \
        "/" + links["c"][0].split("/", 3)[3]
    # A chat app previewing the link goes on to it without counting a click (nor an open).
    preview = client.get(path, follow_redirects=False, headers={"User-Agent": "Slackbot-LinkExpanding 1.0"})
    assert preview.status_code == 302
    assert api.get(f"/api/v1/campaigns/{campaign_id}/results").json()["by_variant_channel"][0]["clicked"] == 0
    redirect = client.get(path, follow_redirects=False)
    assert redirect.status_code == 302 and redirect.headers["location"] == preview.headers["location"]
    target = redirect.headers["location"]
    from urllib.parse import parse_qsl, urlsplit

    assert target.startswith("https://shop.example.com/rebajas?x=1&y=2&")
    assert dict(parse_qsl(urlsplit(target).query)) == {
        "x": "1", "y": "2", "utm_source": "trato", "utm_medium": "email", "utm_campaign": "rebajas-de-primavera",
        "utm_content": "A"}
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert client.get(tampered, follow_redirects=False).status_code == 404
    pixel = "/" + links["o"][0].split("/", 3)[3]
    assert client.get(pixel).headers["content-type"] == "image/gif"
    unsubscribe = "/" + links["c"][1].split("/", 3)[3]
    page = client.get(unsubscribe, follow_redirects=False).headers["location"]
    assert page.split("/")[3] == "u"

    def figures() -> dict[str, Any]:
        [row] = api.get(f"/api/v1/campaigns/{campaign_id}/results").json()["by_variant_channel"]
        return row

    row = figures()
    assert (row["variant"], row["channel"], row["recipients"], row["sent"]) == ("A", "email", 12, 12)
    # Following the unsubscribe link only asks: the unsubscribe counts once it is made on that page.
    assert (row["opened"], row["clicked"], row["unsubscribed"]) == (1, 1, 0)
    assert client.post("/" + page.split("/", 3)[3]).status_code == 200
    assert (figures()["opened"], figures()["clicked"], figures()["unsubscribed"]) == (1, 1, 1)

    from trato.core.db import new_session
    from trato.customers import service as customers

    with new_session(readonly=True) as s:
        kinds = {e.kind for e in customers.timeline(s, customer_id=first.message.customer_id)}
    assert {"message_opened", "message_clicked", "message_unsubscribed"} <= kinds


def test_results_attribute_conversions_and_compare_with_the_holdout(api: Any, campaign_world: dict[str, Any]) -> None:
    from trato.campaigns import results as campaign_results
    from trato.campaigns.models import CampaignRecipient
    from trato.core.db import new_session, unit_of_work
    from trato.customers import service as customers

    make_people(28, start=200)
    campaign_id = create(campaign_world, holdout_percent=50, conversion_event="Order Completed",
                         conversion_days=3, variants=[
                             {"key": "A", "communication": campaign_world["communication"], "split": 50},
                             {"key": "B", "communication": campaign_world["communication"], "split": 50}])
    launch(campaign_id)
    with new_session(readonly=True) as s:
        groups = {r.customer_id: r.variant for r in s.scalars(select(CampaignRecipient).where(
            CampaignRecipient.campaign_id == campaign_id))}
    by_group: dict[str, list[str]] = {}
    for cid, group in groups.items():
        by_group.setdefault(group, []).append(cid)
    assert set(by_group) == {"A", "B", "holdout"}
    buyers = by_group["A"][:3] + by_group["holdout"][:1]
    with unit_of_work() as s:
        for i, cid in enumerate(buyers):
            customers.record_event(s, customer_id=cid, kind="track", name="Order Completed", source_id="test",
                                   message_id=f"order-{i}")
    found = api.get(f"/api/v1/campaigns/{campaign_id}/results").json()
    variants = {v["variant"]: v for v in found["variants"]}
    a, holdout = variants["A"], found["holdout"]
    assert (a["contacted"], a["converted"]) == (len(by_group["A"]), 3)
    assert (holdout["members"], holdout["converted"]) == (len(by_group["holdout"]), 1)
    assert variants["B"]["converted"] == 0
    expected = campaign_results.z_test(3, len(by_group["A"]), 1, len(by_group["holdout"]))
    assert (a["z"], a["p_value"]) == (expected["z"], expected["p_value"])
    # Attributed once: asking again adds nothing.
    with unit_of_work() as s:
        assert campaign_results.attribute_conversions(s, campaign_id=campaign_id) == 0


def test_z_test_matches_a_known_value() -> None:
    from trato.campaigns.results import z_test

    found = z_test(120, 1000, 100, 1000)  # 12% against 10%
    assert found["z"] == 1.4293 and abs(found["p_value"] - 0.152918) < 1e-5  # pooled p = 0.11
    assert z_test(0, 0, 1, 10) == {"z": None, "p_value": None}


def test_an_unsubscribe_link_without_its_message_still_counts_when_followed(campaign_world: dict[str, Any]) -> None:
    """Links sent before they carried their message: following one is all the campaign will ever see."""
    from tests.campaigns.conftest import counted
    from trato.campaigns import results
    from trato.core.db import unit_of_work
    from trato.policy import service as policy

    campaign_id = create(campaign_world)
    launch(campaign_id)
    first, second = campaign_world["people"][:2]
    base = {"m": campaign_id, "v": "A", "ch": "email", "k": "u"}
    with unit_of_work() as s:
        results.track(s, {**base, "c": first, "u": policy.unsubscribe_url(first, "marketing", None, "email")})
        results.track(s, {**base, "c": second, "u": policy.unsubscribe_url(second, "marketing", None, "email",
                                                                         message_id="msg_x")})
    assert counted(campaign_id, "unsubscribed") == {first: "A"}
    assert set(counted(campaign_id, "opened")) == {first, second}
