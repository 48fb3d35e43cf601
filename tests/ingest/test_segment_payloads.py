"""Recorded Segment payloads of every call type, and what each leaves in the customer memory."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.ingest.tracking import Memory, Tracking, identities, sample, when


def occurred_as_corrected(event: dict[str, Any], timestamp: str, sent_at: str) -> None:
    """occurred_at is receivedAt - (sentAt - timestamp), to the microsecond."""
    assert when(event["occurred_at"]) == when(event["received_at"]) - (when(sent_at) - when(timestamp))


def only_event(memory: Memory, customer_id: str) -> dict[str, Any]:
    events = memory.timeline(customer_id)
    assert len(events) == 1, events
    return events[0]


def test_identify_links_identities_and_sets_typed_traits(tracking: Tracking, memory: Memory) -> None:
    body = sample("identify")
    assert tracking.send("identify", body) == {"success": True, "accepted": 1}

    view = memory.lookup(email="PETER.GIBBONS@initech.com")
    customer = view["customer"]
    assert customer["first_name"] == "Peter"  # from the combined 'name' trait
    assert customer["last_name"] == "Gibbons"
    assert customer["email"] == "peter.gibbons@initech.com"
    assert customer["phone"] == "+34612345678"
    assert customer["timezone"] == "Europe/Madrid"
    assert customer["country"] == "ES"
    assert customer["birthday"] == "1985-04-12"
    assert customer["customer_since"] == "2014-07-12"
    assert customer["traits"]["plan"] == "premium"
    assert customer["traits"]["logins"] == 5
    assert customer["traits"]["address"]["city"] == "Madrid"

    found = identities(view)
    assert set(found) == {
        ("user_id", "97980cfea0067"), ("anonymous_id", "507f191e810c19729de860ea"),
        ("email", "peter.gibbons@initech.com"), ("phone", "+34612345678"),
    }
    for identity in found.values():
        assert identity["linked_via"] == "identify"
        assert identity["message_id"] == body["messageId"]
    # Every identity leads to the same person; the phone is found in national form too.
    for params in ({"user_id": "97980cfea0067"}, {"anonymous_id": "507f191e810c19729de860ea"},
                   {"phone": "612 34 56 78"}, {"phone": "+34612345678"}):
        assert memory.lookup(**params)["customer"]["id"] == customer["id"]

    event = only_event(memory, customer["id"])
    assert (event["kind"], event["name"]) == ("identify", None)
    assert (event["channel"], event["department"]) == ("web", "sales")  # the source's defaults
    assert event["message_id"] == body["messageId"]
    occurred_as_corrected(event, body["timestamp"], body["sentAt"])

    computed = customer["computed"]
    assert computed["event_count"] == 1
    assert computed["first_seen_at"] == computed["last_seen_at"] == event["occurred_at"]
    assert computed["last_channel"] == "web"
    assert (computed["purchase_count"], computed["lifetime_value"]) == (0, {})
    assert view["event_counts"] == {"identify": 1}


def test_order_completed_is_a_purchase_with_revenue(tracking: Tracking, memory: Memory) -> None:
    body = sample("track")
    tracking.send("track", body)

    view = memory.lookup(user_id="97980cfea0067")
    assert set(identities(view)) == {
        ("user_id", "97980cfea0067"), ("anonymous_id", "507f191e810c19729de860ea"),
        ("email", "peter.gibbons@initech.com"),  # from context.traits
    }
    customer = view["customer"]
    event = only_event(memory, customer["id"])
    assert (event["kind"], event["name"]) == ("purchase", "Order Completed")
    assert event["revenue"] == 25.0  # 'revenue', not 'total'
    assert event["properties"]["products"][1]["name"] == "Uno Card Game"
    assert event["properties"]["order_id"] == "50314b8e9bcf000000000000"
    assert (event["channel"], event["department"]) == ("web", "sales")
    occurred_as_corrected(event, body["timestamp"], body["sentAt"])

    computed = customer["computed"]
    assert computed["purchase_count"] == 1
    assert computed["lifetime_value"] == {"EUR": 25.0}
    assert computed["last_purchase_at"] == event["occurred_at"]
    assert view["event_counts"] == {"Order Completed": 1}


def test_page_from_analytics_js_with_the_write_key_in_the_body(tracking: Tracking, memory: Memory) -> None:
    body = sample("page", tracking.write_key)
    # analytics.js sends text/plain (no CORS preflight) and no Authorization header.
    response = tracking.client.post(
        "/v1/page", content=json.dumps(body), headers={"Content-Type": "text/plain", "Authorization": ""}
    )
    assert response.status_code == 200, response.text

    view = memory.lookup(anonymous_id="4f1a4a2e-3c9e-4d8b-a8e1-6f7c2d9b0e55")
    assert set(identities(view)) == {("anonymous_id", "4f1a4a2e-3c9e-4d8b-a8e1-6f7c2d9b0e55")}
    event = only_event(memory, view["customer"]["id"])
    assert (event["kind"], event["name"], event["channel"], event["department"]) == ("page", "Pricing", "web", "sales")
    assert event["properties"]["path"] == "/pricing"
    occurred_as_corrected(event, body["timestamp"], body["sentAt"])
    assert view["customer"]["computed"]["last_channel"] == "web"
    assert view["event_counts"] == {"page:Pricing": 1}


def test_screen_from_a_phone_uses_original_timestamp_and_device_token(tracking: Tracking, memory: Memory) -> None:
    body = sample("screen")
    assert "timestamp" not in body
    tracking.send("screen", body)

    view = memory.lookup(kind="device_token", value=body["context"]["device"]["token"])
    assert set(identities(view)) == {
        ("user_id", "97980cfea0067"), ("anonymous_id", "3a12eab0-bca7-11e4-8dfc-aa07a5b093db"),
        ("device_token", body["context"]["device"]["token"]),
    }
    customer = view["customer"]
    assert (customer["first_name"], customer["last_name"]) == ("Peter", "Gibbons")  # context.traits
    event = only_event(memory, customer["id"])
    assert (event["kind"], event["name"], event["channel"]) == ("screen", "Home", "app")
    assert event["properties"] == {"Feed Type": "private", "variation": "blue sign up button"}
    occurred_as_corrected(event, body["originalTimestamp"], body["sentAt"])
    assert customer["computed"]["last_channel"] == "app"


def test_group_keeps_company_traits_on_the_event_not_on_the_person(tracking: Tracking, memory: Memory) -> None:
    body = sample("group")
    tracking.send("group", body)

    view = memory.lookup(user_id="97980cfea0067")
    customer = view["customer"]
    assert customer["first_name"] is None  # 'name' here is the company's
    assert customer["traits"] == {}
    event = only_event(memory, customer["id"])
    assert (event["kind"], event["name"]) == ("group", "0e8c78ea9d97a7b8185e8632")
    assert event["properties"] == {"traits": body["traits"]}
    occurred_as_corrected(event, body["timestamp"], body["sentAt"])
    assert view["event_counts"] == {"group:0e8c78ea9d97a7b8185e8632": 1}


def test_alias_joins_the_anonymous_history_to_the_user(tracking: Tracking, memory: Memory) -> None:
    tracking.send("page", {"anonymousId": "39239-239239-239239-23923", "name": "Signup", "messageId": "before-alias",
                           "timestamp": "2024-02-23T22:20:00.000Z"})
    body = sample("alias")
    tracking.send("alias", body)

    view = memory.lookup(user_id="507f191e81")
    assert memory.lookup(anonymous_id="39239-239239-239239-23923")["customer"]["id"] == view["customer"]["id"]
    assert {("user_id", "507f191e81"), ("anonymous_id", "39239-239239-239239-23923")} <= set(identities(view))
    events = {e["message_id"]: e for e in memory.timeline(view["customer"]["id"])}
    assert set(events) == {"before-alias", body["messageId"]}
    assert events[body["messageId"]]["kind"] == "alias"
    occurred_as_corrected(events[body["messageId"]], body["timestamp"], body["sentAt"])
    assert view["customer"]["computed"]["event_count"] == 2


def test_batch_mixing_every_call_builds_one_profile(tracking: Tracking, memory: Memory) -> None:
    body = sample("batch", tracking.write_key)
    calls = body["batch"]
    assert {c["type"] for c in calls} == {"identify", "track", "page", "screen", "group", "alias"}
    assert tracking.send("batch", body) == {"success": True, "accepted": len(calls)}

    view = memory.lookup(email="lucia.martin@example.es")
    customer = view["customer"]
    assert (customer["first_name"], customer["last_name"]) == ("Lucía", "Martín")
    assert customer["phone"] == "+34612998877"  # national number, company's region (ES)
    assert customer["locale"] == "es-ES"
    assert set(identities(view)) == {
        ("user_id", "cliente-4711"), ("anonymous_id", "0b8a6f2c-5d3e-4e1f-9a7b-c6d5e4f3a2b1"),
        ("email", "lucia.martin@example.es"), ("phone", "+34612998877"), ("crm_id", "CRM-0042"),
    }
    assert memory.lookup(kind="crm_id", value="CRM-0042")["customer"]["id"] == customer["id"]

    events = {e["message_id"]: e for e in memory.timeline(customer["id"])}
    assert set(events) == {c["messageId"] for c in calls}
    for call in calls:  # the batch's sentAt corrects each event's timestamp
        occurred_as_corrected(events[call["messageId"]], call["timestamp"], body["sentAt"])
    expected = {
        "b1-page": ("page", "Tarifas", "web", "sales"),
        "b1-identify": ("identify", None, "web", "sales"),
        "b1-track-viewed": ("track", "Product Viewed", "web", "sales"),
        "b1-track-order": ("purchase", "Order Completed", "web", "sales"),
        "b1-screen": ("screen", "Mi cuenta", "app", "sales"),
        "b1-group": ("group", "empresa-77", "web", "sales"),
        "b1-track-call": ("track", "Support Call Finished", "call_center", "service"),
        "b1-alias": ("alias", None, "web", "sales"),
    }
    assert {m: (e["kind"], e["name"], e["channel"], e["department"]) for m, e in events.items()} == expected
    # The timeline is newest first.
    assert [e["message_id"] for e in memory.timeline(customer["id"])][:2] == ["b1-alias", "b1-track-call"]

    computed = customer["computed"]
    assert computed["event_count"] == 8
    assert computed["purchase_count"] == 1
    assert computed["lifetime_value"] == {"EUR": 35.9}
    assert computed["first_seen_at"] == events["b1-page"]["occurred_at"]
    assert computed["last_seen_at"] == events["b1-alias"]["occurred_at"]
    assert computed["last_purchase_at"] == events["b1-track-order"]["occurred_at"]
    assert computed["last_channel"] == "web"
    assert view["event_counts"] == {
        "page:Tarifas": 1, "identify": 1, "Product Viewed": 1, "Order Completed": 1, "screen:Mi cuenta": 1,
        "group:empresa-77": 1, "Support Call Finished": 1, "alias": 1,
    }
    channels = {c["channel"]: c["count"] for c in view["channels"]}
    assert channels == {"web": 6, "app": 1, "call_center": 1}

    assert [e["message_id"] for e in memory.timeline(customer["id"], channel="call_center")] == ["b1-track-call"]
    assert [e["message_id"] for e in memory.timeline(customer["id"], department="service")] == ["b1-track-call"]
    assert {e["message_id"] for e in memory.timeline(customer["id"], kind="purchase")} == {"b1-track-order"}
    window = memory.timeline(
        customer["id"], since=events["b1-track-order"]["occurred_at"], until=events["b1-track-call"]["occurred_at"]
    )
    assert {e["message_id"] for e in window} == {"b1-track-order", "b1-screen", "b1-group"}
    assert len(memory.timeline(customer["id"], limit=3)) == 3


def test_samples_of_one_person_build_one_profile(tracking: Tracking, memory: Memory) -> None:
    for name in ("identify", "track", "screen", "group"):
        tracking.send(name, sample(name))
    view = memory.lookup(user_id="97980cfea0067")
    customer = view["customer"]
    assert customer["computed"]["event_count"] == 4
    assert customer["computed"]["lifetime_value"] == {"EUR": 25.0}
    assert customer["computed"]["purchase_count"] == 1
    assert customer["first_name"] == "Peter" and customer["email"] == "peter.gibbons@initech.com"
    assert {k for k, _ in identities(view)} == {"user_id", "anonymous_id", "email", "phone", "device_token"}
    timeline = memory.timeline(customer["id"])
    assert {e["kind"] for e in timeline} == {"identify", "purchase", "screen", "group"}
    # Computed traits follow the corrected times, not the order of arrival.
    assert customer["computed"]["last_channel"] == timeline[0]["channel"]
    assert customer["computed"]["last_seen_at"] == timeline[0]["occurred_at"]
    assert customer["computed"]["first_seen_at"] == timeline[-1]["occurred_at"]


def test_analytics_js_one_letter_paths(tracking: Tracking, memory: Memory, subtests: pytest.Subtests) -> None:
    """analytics.js posts each call to /v1/<first letter> (and batches to /v1/b), as text/plain."""
    for name in ("identify", "track", "page", "screen", "group", "alias", "batch"):
        with subtests.test(path=f"/v1/{name[0]}", call=name):
            body = {**sample(name), "writeKey": tracking.write_key}
            response = tracking.client.post(
                f"/v1/{name[0]}", content=json.dumps(body),
                headers={"Content-Type": "text/plain", "Authorization": ""},
            )
            assert response.status_code == 200, response.text
            calls = body["batch"] if name == "batch" else [body]
            assert response.json() == {"success": True, "accepted": len(calls)}
            last = calls[-1]
            kind, value = ("user_id", last["userId"]) if last.get("userId") else ("anonymous_id", last["anonymousId"])
            customer_id = memory.lookup(kind=kind, value=value)["customer"]["id"]
            assert last["messageId"] in {e["message_id"] for e in memory.timeline(customer_id)}


def test_timestamps_keep_their_time_zone(tracking: Tracking, memory: Memory) -> None:
    tracking.send("track", {"userId": "tz", "event": "Signed", "messageId": "tz-1",
                            "timestamp": "2024-06-01T12:00:00+02:00"})
    customer_id = memory.lookup(user_id="tz")["customer"]["id"]
    assert when(memory.event(customer_id, "tz-1")["occurred_at"]) == when("2024-06-01T10:00:00Z")
    assert timedelta(0) == when(memory.event(customer_id, "tz-1")["occurred_at"]).utcoffset()
