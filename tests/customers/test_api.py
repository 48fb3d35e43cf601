"""The management API of the customer memory: 360° view, look-ups, search, timeline, merges."""

from __future__ import annotations

import base64

import pytest


def track(client, write_key: str, batch: list[dict]) -> dict:
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    r = client.post("/v1/batch", json={"batch": batch}, headers={"Authorization": auth})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def ana(api) -> dict:
    r = api.post("/api/v1/customers", json={
        "traits": {"first_name": "Ana", "last_name": "García López", "country": "ES", "timezone": "Europe/Madrid",
                   "birthday": "1985-04-12", "plan": "plus"},
        "identities": [{"kind": "user_id", "value": "C-1001"}, {"kind": "email", "value": "Ana.Garcia@Example.com"},
                       {"kind": "phone", "value": "612 345 678"}, {"kind": "social:twitter", "value": "@AnaG"}],
    })
    assert r.status_code == 201, r.text
    return r.json()


def test_create_normalises_identities_and_types_traits(ana):
    customer = ana["customer"]
    assert customer["id"].startswith("cus_")
    assert customer["birthday"] == "1985-04-12"
    assert customer["timezone"] == "Europe/Madrid"
    values = {(i["kind"], i["value"]) for i in ana["identities"]}
    assert ("email", "ana.garcia@example.com") in values
    assert ("phone", "+34612345678") in values
    assert ("social:twitter", "anag") in values
    assert all(i["linked_via"] == "api" for i in ana["identities"])


@pytest.mark.parametrize(("params", "expected"), [
    ({"email": "ANA.GARCIA@example.com"}, 200),
    ({"phone": "+34 612 34 56 78"}, 200),
    ({"user_id": "C-1001"}, 200),
    ({"kind": "social:twitter", "value": "@anag"}, 200),
    ({"email": "nobody@example.com"}, 404),
])
def test_lookup_by_any_identity(api, ana, params, expected):
    r = api.get("/api/v1/customers/lookup", params=params)
    assert r.status_code == expected, r.text
    if expected == 200:
        assert r.json()["customer"]["id"] == ana["customer"]["id"]
    else:
        assert r.json()["error"]["code"] == "customer_not_found"


def test_lookup_needs_exactly_one_identity(api, ana):
    r = api.get("/api/v1/customers/lookup", params={"email": "a@example.com", "phone": "+34612345678"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "lookup_needs_one_identity"


@pytest.mark.parametrize("query", ["ana", "Ana G", "garcía", "ana.garcia@", "+3461234", "612345", "C-10"])
def test_search_by_name_email_phone_or_identity_prefix(api, ana, query):
    r = api.get("/api/v1/customers", params={"q": query})
    assert r.status_code == 200
    assert [c["id"] for c in r.json()["items"]] == [ana["customer"]["id"]]


def test_search_escapes_like_wildcards(api, ana):
    assert api.get("/api/v1/customers", params={"q": "%"}).json()["items"] == []
    assert api.get("/api/v1/customers", params={"q": "_na"}).json()["items"] == []


@pytest.mark.parametrize(("identity", "code"), [
    ({"kind": "phone", "value": "12"}, "invalid_phone"),
    ({"kind": "email", "value": "not-an-email"}, "invalid_email"),
    ({"kind": "Bad Kind!", "value": "x"}, "invalid_identity"),
])
def test_bad_identities_are_refused_with_a_clear_code(api, identity, code):
    r = api.post("/api/v1/customers", json={"identities": [identity]})
    assert r.status_code == 422
    body = r.json()["error"]
    assert body["code"] == code
    assert body["message"]


def test_bad_well_known_trait_is_refused(api):
    r = api.post("/api/v1/customers", json={"traits": {"timezone": "Mars/Olympus"}})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_trait"
    assert "timezone" in r.json()["error"]["message"]


def test_identity_of_someone_else_is_a_conflict(api, ana):
    other = api.post("/api/v1/customers", json={"identities": [{"kind": "user_id", "value": "C-2"}]}).json()
    r = api.post(f"/api/v1/customers/{other['customer']['id']}/identities",
                 json={"kind": "email", "value": "ana.garcia@example.com"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "identity_taken"


def test_timeline_is_newest_first_filterable_and_paged(api, client, write_key, ana):
    calls = [
        {"type": "track", "userId": "C-1001", "event": "Product Viewed", "messageId": f"v{i}",
         "timestamp": f"2026-03-{i + 1:02d}T10:00:00Z", "properties": {"product_id": f"p{i}"}}
        for i in range(7)
    ] + [
        {"type": "track", "userId": "C-1001", "event": "Support Call", "messageId": "call",
         "timestamp": "2026-03-20T10:00:00Z", "context": {"channel": "call_center", "department": "service"}},
        {"type": "track", "userId": "C-1001", "event": "Order Completed", "messageId": "order",
         "timestamp": "2026-03-21T10:00:00Z", "properties": {"revenue": 120.5}},
    ]
    track(client, write_key, calls)
    cid = ana["customer"]["id"]
    r = api.post(f"/api/v1/customers/{cid}/notes", json={"text": "Pidió la factura en papel", "department": "billing"})
    assert r.status_code == 201
    page = api.get(f"/api/v1/customers/{cid}/timeline", params={"limit": 4}).json()
    assert [e["kind"] for e in page["items"]][:3] == ["note", "purchase", "track"]
    assert page["next_before"] is not None
    older = api.get(f"/api/v1/customers/{cid}/timeline", params={"limit": 4, "before": page["next_before"]}).json()
    seen = [e["id"] for e in page["items"]] + [e["id"] for e in older["items"]]
    assert len(seen) == len(set(seen)) == 8
    service = api.get(f"/api/v1/customers/{cid}/timeline", params={"department": "service"}).json()["items"]
    assert [e["name"] for e in service] == ["Support Call"]
    assert service[0]["channel"] == "call_center"
    web = api.get(f"/api/v1/customers/{cid}/timeline", params={"channel": "web", "kind": "track"}).json()["items"]
    assert {e["name"] for e in web} == {"Product Viewed"}
    march = api.get(f"/api/v1/customers/{cid}/timeline",
                    params={"since": "2026-03-02T00:00:00Z", "until": "2026-03-04T00:00:00Z"}).json()["items"]
    assert [e["properties"]["product_id"] for e in march] == ["p2", "p1"]

    view = api.get(f"/api/v1/customers/{cid}").json()
    computed = view["customer"]["computed"]
    assert computed["event_count"] == 10
    assert computed["purchase_count"] == 1
    assert computed["lifetime_value"] == {"EUR": 120.5}
    assert computed["last_channel"] == "web"  # the note has no channel; the order came from the web source
    assert view["event_counts"]["Product Viewed"] == 7
    assert {c["channel"] for c in view["channels"]} == {"web", "call_center"}


def test_manual_merge_needs_force_for_two_user_ids_and_unmerge_restores(api, ana, client, write_key):
    other = api.post("/api/v1/customers", json={"traits": {"first_name": "Ana"},
                                                 "identities": [{"kind": "user_id", "value": "C-9"}]}).json()
    track(client, write_key, [{"type": "track", "userId": "C-9", "event": "Signed In", "messageId": "s1"}])
    a, b = ana["customer"]["id"], other["customer"]["id"]
    r = api.post(f"/api/v1/customers/{a}/merge", json={"other_id": b})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "merge_refused"
    r = api.post(f"/api/v1/customers/{a}/merge", json={"other_id": b, "force": True})
    assert r.status_code == 201
    merge = r.json()
    assert merge["moved"]["events"] == 1
    assert "user_id:C-9" in merge["moved"]["identities"]
    assert api.get(f"/api/v1/customers/{b}").json()["customer"]["id"] == a  # merged id leads to the survivor
    assert api.get("/api/v1/customers/lookup", params={"user_id": "C-9"}).json()["customer"]["id"] == a
    r = api.post(f"/api/v1/customers/{b}/unmerge")
    assert r.status_code == 200
    assert r.json()["status"] == "undone"
    assert api.get("/api/v1/customers/lookup", params={"user_id": "C-9"}).json()["customer"]["id"] == b
    assert api.get(f"/api/v1/customers/{b}").json()["customer"]["computed"]["event_count"] == 1
    again = api.post(f"/api/v1/customers/{b}/unmerge")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "merge_not_found"


def test_traits_patch_sets_and_removes(api, ana):
    cid = ana["customer"]["id"]
    r = api.patch(f"/api/v1/customers/{cid}/traits", json={"traits": {"plan": None, "first_name": "Anabel"}})
    assert r.status_code == 200
    body = r.json()
    assert body["first_name"] == "Anabel"
    assert "plan" not in body["traits"]


def test_unknown_customer_is_404_with_code(api):
    r = api.get("/api/v1/customers/cus_nope")
    assert r.status_code == 404
    assert r.json()["error"] == {"code": "customer_not_found", "message": "customer cus_nope does not exist",
                                 "details": {"customer_id": "cus_nope"}}


def test_authentication_and_roles(client, database_url):
    r = client.get("/api/v1/customers", params={"q": "a"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_token"
    r = client.get("/api/v1/customers", params={"q": "a"}, headers={"Authorization": "Bearer trt_wrong"})
    assert r.json()["error"]["code"] == "invalid_token"
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        _, viewer = service.create_token(s, name="viewer", role="viewer", actor="test")
    headers = {"Authorization": f"Bearer {viewer}"}
    assert client.get("/api/v1/customers", params={"q": "a"}, headers=headers).status_code == 200
    r = client.post("/api/v1/customers", json={}, headers=headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "role_required"


def test_lifetime_value_is_kept_per_currency(api, client, write_key, ana):
    result = track(client, write_key, [
        {"type": "track", "userId": "C-1001", "event": "Order Completed", "messageId": "o1",
         "properties": {"revenue": 100, "currency": "eur"}},
        {"type": "track", "userId": "C-1001", "event": "Order Completed", "messageId": "o2",
         "properties": {"revenue": 1500.5, "currency": "MXN"}},
        {"type": "track", "userId": "C-1001", "event": "Order Completed", "messageId": "o3",
         "properties": {"revenue": 20}},
        {"type": "track", "userId": "C-1001", "event": "Order Completed", "messageId": "o4",
         "properties": {"revenue": 5, "currency": "euros"}},
    ])
    assert [r["code"] for r in result["rejected"]] == ["invalid_event"]
    assert "currency" in result["rejected"][0]["message"]
    computed = api.get(f"/api/v1/customers/{ana['customer']['id']}").json()["customer"]["computed"]
    assert computed["lifetime_value"] == {"EUR": 120.0, "MXN": 1500.5}  # never added across currencies
    assert computed["purchase_count"] == 3


def test_timeline_cursor_out_of_range_is_a_clear_422(api, ana):
    r = api.get(f"/api/v1/customers/{ana['customer']['id']}/timeline", params={"before": 2**70})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
    assert "before" in r.json()["error"]["message"]
