import base64


def auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_identify_then_track_builds_one_customer(client, write_key, api):
    r = client.post("/v1/identify", headers=auth(write_key), json={
        "userId": "u1", "anonymousId": "a1", "messageId": "m1",
        "traits": {"firstName": "Ana", "lastName": "García", "email": "Ana@Example.com", "phone": "+34 612 345 678"},
        "timestamp": "2026-05-01T10:00:00Z",
    })
    assert r.status_code == 200, r.text
    r = client.post("/v1/track", headers=auth(write_key), json={
        "anonymousId": "a1", "event": "Order Completed", "messageId": "m2",
        "properties": {"revenue": 39.99}, "timestamp": "2026-05-02T10:00:00Z",
    })
    assert r.status_code == 200, r.text
    view = api.get("/api/v1/customers/lookup", params={"email": "ana@example.com"}).json()
    assert view["customer"]["first_name"] == "Ana"
    assert view["customer"]["phone"] == "+34612345678"
    assert view["customer"]["computed"]["event_count"] == 2
    assert view["customer"]["computed"]["lifetime_value"] == {"EUR": 39.99}
    assert {i["kind"] for i in view["identities"]} == {"user_id", "anonymous_id", "email", "phone"}
