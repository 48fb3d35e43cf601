"""Limits and bad input: a clear 4xx with a stable code, never a 500, and nothing accepted is lost."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from tests.ingest.tracking import Memory, Tracking, is_error


def call(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u-1", "event": "Viewed", "messageId": message_id, **fields}


def landed(memory: Memory, user_id: str = "u-1") -> set[str]:
    return {e["message_id"] for e in memory.timeline(memory.lookup(user_id=user_id)["customer"]["id"])}


def batch_rejects(tracking: Tracking, memory: Memory, bad: dict[str, Any], code: str) -> dict[str, Any]:
    """Send good, bad, good; the good ones land and the bad one is rejected with ``code``."""
    bad = {"messageId": "bad", **bad}
    response = tracking.post("batch", {"batch": [call("good-1"), bad, call("good-2")]})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["success"] is False and result["accepted"] == 2, result
    (rejection,) = result["rejected"]
    assert rejection["index"] == 1 and rejection["messageId"] == bad["messageId"], rejection
    assert rejection["code"] == code, rejection
    assert isinstance(rejection["message"], str) and rejection["message"], rejection
    assert landed(memory) == {"good-1", "good-2"}
    return rejection


# -- sizes --------------------------------------------------------------------------------------


def test_an_event_over_32_kb_is_rejected_and_the_rest_of_the_batch_lands(tracking: Tracking, memory: Memory) -> None:
    rejection = batch_rejects(tracking, memory, call("x", properties={"blob": "x" * 33_000}), "event_too_large")
    assert "32 KB" in rejection["message"]


def test_an_event_just_under_32_kb_is_accepted(tracking: Tracking, memory: Memory) -> None:
    body = call("big", properties={"blob": ""})
    body["properties"]["blob"] = "x" * (32 * 1024 - len(json.dumps(body).encode()) - 10)
    tracking.send("batch", {"batch": [body]})
    assert landed(memory) == {"big"}


def test_a_single_call_over_32_kb_is_refused(tracking: Tracking) -> None:
    response = tracking.post("track", call("big", properties={"blob": "x" * 40_000}))
    is_error(response, 400, "event_too_large")


def test_a_request_over_500_kb_is_refused_whole(tracking: Tracking, memory: Memory) -> None:
    calls = [call(f"m-{i}", properties={"blob": "x" * 20_000}) for i in range(30)]  # each under 32 KB
    error = is_error(tracking.post("batch", {"batch": calls}), 400, "batch_too_large")
    assert error["details"] == {"limit": 500 * 1024}
    memory.missing(user_id="u-1")


def test_a_gzip_bomb_is_refused(tracking: Tracking) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * 20_000_000 + b"]}")
    assert len(bomb) < 100_000
    response = tracking.post("batch", bomb, headers={"Content-Encoding": "gzip"})
    is_error(response, 400, "batch_too_large")


# -- the body -----------------------------------------------------------------------------------


def test_malformed_json(tracking: Tracking, subtests: pytest.Subtests) -> None:
    for endpoint in ("track", "batch"):
        with subtests.test(endpoint=endpoint):
            error = is_error(tracking.post(endpoint, b'{"userId": "u-1", "event": '), 400, "invalid_json")
            assert "not valid JSON" in error["message"]


def test_a_body_that_is_not_an_object(tracking: Tracking, subtests: pytest.Subtests) -> None:
    for endpoint in ("identify", "batch"):
        for body in (b"[]", b'"track"', b"42", b"null", b"true", b""):
            with subtests.test(endpoint=endpoint, body=body):
                is_error(tracking.post(endpoint, body), 400, "invalid_json")


def test_batch_must_be_a_list(tracking: Tracking, subtests: pytest.Subtests) -> None:
    for body in ({}, {"batch": None}, {"batch": {}}, {"batch": "events"}, {"batch": 3}):
        with subtests.test(body=body):
            error = is_error(tracking.post("batch", body), 400, "invalid_event")
            assert error["details"] == {"field": "batch"}


def test_an_empty_batch(tracking: Tracking) -> None:
    error = is_error(tracking.post("batch", {"batch": []}), 400, "no_event_accepted")
    assert error["message"] == "the batch is empty"


def test_a_batch_with_nothing_acceptable_answers_400_with_every_reason(tracking: Tracking, memory: Memory) -> None:
    response = tracking.post("batch", {"batch": [{"type": "track", "event": "E", "messageId": "a"}, "not an event",
                                                 {"type": "shout", "userId": "u-1"}]})
    error = is_error(response, 400, "no_event_accepted")
    assert [(r["index"], r["messageId"], r["code"]) for r in error["details"]["rejected"]] == [
        (0, "a", "invalid_event"), (1, None, "invalid_event"), (2, None, "invalid_event"),
    ]
    memory.missing(user_id="u-1")


def test_gzip_bodies_are_read(tracking: Tracking, memory: Memory) -> None:
    tracking.send("track", call("zipped"), compress=True)
    tracking.send("batch", {"batch": [call("zipped-batch")]}, compress=True)
    assert landed(memory) == {"zipped", "zipped-batch"}


def test_a_body_that_says_gzip_but_is_not(tracking: Tracking) -> None:
    response = tracking.post("track", json.dumps(call("x")).encode(), headers={"Content-Encoding": "gzip"})
    error = is_error(response, 400, "invalid_json")
    assert "gzip" in error["message"]


def test_a_truncated_gzip_body(tracking: Tracking) -> None:
    data = gzip.compress(json.dumps({"batch": [call(f"m-{i}") for i in range(50)]}).encode())
    response = tracking.post("batch", data[: len(data) // 2], headers={"Content-Encoding": "gzip"})
    is_error(response, 400, "invalid_json")


# -- the write key ------------------------------------------------------------------------------


def test_missing_write_key(tracking: Tracking) -> None:
    response = tracking.client.post("/v1/track", json=call("x"), headers={"Authorization": ""})
    is_error(response, 401, "missing_write_key")
    assert response.headers["www-authenticate"]


def test_an_empty_basic_user_and_no_body_key_is_missing(tracking: Tracking) -> None:
    is_error(tracking.post("track", call("x"), write_key=""), 401, "missing_write_key")
    response = tracking.client.post("/v1/track", json=call("x"), headers={"Authorization": "Basic !!notbase64"})
    is_error(response, 401, "missing_write_key")


def test_wrong_write_key(tracking: Tracking, memory: Memory) -> None:
    is_error(tracking.post("track", call("x"), write_key="wk_not-a-key"), 401, "invalid_write_key")
    response = tracking.client.post("/v1/batch", json={"batch": [call("x")], "writeKey": "wk_wrong"},
                                    headers={"Authorization": ""})
    is_error(response, 401, "invalid_write_key")
    memory.missing(user_id="u-1")


def test_write_key_in_the_body(tracking: Tracking, memory: Memory) -> None:
    key, headers = tracking.write_key, {"Authorization": ""}
    single = tracking.client.post("/v1/track", json={**call("in-body"), "writeKey": key}, headers=headers)
    batch = tracking.client.post("/v1/batch", json={"batch": [call("in-body-batch")], "writeKey": key}, headers=headers)
    assert single.status_code == batch.status_code == 200, (single.text, batch.text)
    assert landed(memory) == {"in-body", "in-body-batch"}


# -- the events ---------------------------------------------------------------------------------


def test_no_user_id_nor_anonymous_id(tracking: Tracking, memory: Memory) -> None:
    bad = {"type": "track", "event": "Viewed", "userId": "", "anonymousId": None}
    rejection = batch_rejects(tracking, memory, bad, "invalid_event")
    assert rejection["message"] == "every call needs a 'userId' or an 'anonymousId'"
    error = is_error(tracking.post("identify", {"traits": {"plan": "gold"}}), 400, "invalid_event")
    assert error["message"] == "every call needs a 'userId' or an 'anonymousId'"
    assert error["details"]["code"] == "invalid_event" and error["details"]["index"] == 0


def test_an_invalid_phone_trait(tracking: Tracking, memory: Memory) -> None:
    bad = {"type": "identify", "userId": "u-2", "traits": {"phone": "12"}}
    rejection = batch_rejects(tracking, memory, bad, "invalid_phone")
    assert "'12'" in rejection["message"]
    memory.missing(user_id="u-2")


def test_an_invalid_time_zone_trait(tracking: Tracking, memory: Memory) -> None:
    bad = {"type": "identify", "userId": "u-2", "traits": {"timezone": "Mars/Olympus_Mons"}}
    rejection = batch_rejects(tracking, memory, bad, "invalid_trait")
    assert "timezone" in rejection["message"] and "Europe/Madrid" in rejection["message"]
    error = is_error(tracking.post("identify", bad), 400, "invalid_trait")
    assert error["details"]["code"] == "invalid_trait"


EVENT_RULES: list[tuple[dict[str, Any], str, str]] = [
    ({"type": "identify", "userId": "u-2", "traits": {"email": "not-an-address"}}, "invalid_email", "e-mail"),
    ({"type": "identify", "userId": "u-2", "context": {"traits": {"country": "Spain"}}}, "invalid_trait", "country"),
    ({"type": "identify", "userId": "u-2", "traits": {"birthday": "someday"}}, "invalid_trait", "birthday"),
    ({"type": "identify", "userId": "u-2", "traits": "gold"}, "invalid_event", "'traits'"),
    ({"type": "track", "userId": "u-2"}, "invalid_event", "'event'"),
    ({"type": "track", "userId": "u-2", "event": "E", "properties": ["a"]}, "invalid_event", "'properties'"),
    ({"type": "track", "userId": "u-2", "event": "E", "properties": {"revenue": "lots"}}, "invalid_event", "revenue"),
    ({"type": "track", "userId": "u-2", "event": "E", "properties": {"revenue": 1e13}}, "invalid_event", "revenue"),
    ({"type": "track", "userId": {"id": 1}, "event": "E"}, "invalid_event", "'userId'"),
    ({"type": "track", "userId": "u" * 513, "event": "E"}, "invalid_event", "512"),
    ({"type": "track", "userId": "u-2", "event": "E", "messageId": "m" * 129}, "invalid_event", "128"),
    ({"type": "alias", "userId": "u-2"}, "invalid_event", "previousId"),
    ({"type": "shout", "userId": "u-2"}, "invalid_event", "'type'"),
    ({"type": "track", "userId": "u-2", "event": "E", "context": {"externalIds": {"id": "1"}}},
     "invalid_event", "externalIds"),
    ({"type": "track", "userId": "u-2", "event": "E", "context": {"externalIds": [{"id": "1"}]}},
     "invalid_event", "externalIds"),
    ({"type": "track", "userId": "u-2", "event": "E", "context": {"externalIds": [{"id": "1", "type": "Bad Kind"}]}},
     "invalid_identity", "kind"),
    ({"type": "screen", "userId": "u-2", "context": {"device": {"token": ["t"]}}}, "invalid_identity", "device_token"),
]


def test_event_rules(tracking: Tracking, memory: Memory, subtests: pytest.Subtests) -> None:
    """Each broken event is rejected with its code and a message that names the problem."""
    for bad, code, says in EVENT_RULES:
        with subtests.test(code=code, event=bad):
            rejection = batch_rejects(tracking, memory, bad, code)
            assert says in rejection["message"]


TOO_MUCH_FOR_THE_TIMELINE: list[tuple[dict[str, Any], str]] = [
    ({"type": "track", "userId": "u-2", "event": "E", "properties": {"channel": "c" * 33}}, "'channel'"),
    ({"type": "track", "userId": "u-2", "event": "E", "context": {"department": "d" * 65}}, "'department'"),
    ({"type": "group", "userId": "u-2", "groupId": "g" * 201}, "'groupId'"),
    ({"type": "track", "userId": "u-2", "event": "E",
      "context": {"externalIds": [{"id": "1", "type": "a" * 32 + ":" + "b" * 32}]}}, "externalIds"),
    ({"type": "track", "userId": "u-2\u0000", "event": "E"}, "NUL"),
    ({"type": "track", "userId": "u-2", "event": "E", "properties": {"note": "a\u0000b"}}, "NUL"),
    ({"type": "track", "userId": "u-2", "event": "E", "properties": {"k\u0000": 1}}, "NUL"),
]


def test_values_the_timeline_cannot_hold_are_rejected_alone(
    tracking: Tracking, memory: Memory, subtests: pytest.Subtests
) -> None:
    """Values PostgreSQL cannot store (over a column's width, NUL) are refused per event on every
    database, so they cannot fail the write of the whole batch."""
    for bad, says in TOO_MUCH_FOR_THE_TIMELINE:
        with subtests.test(event=bad):
            rejection = batch_rejects(tracking, memory, bad, "invalid_event")
            assert says in rejection["message"]


def test_a_literal_backslash_u0000_is_ordinary_text(tracking: Tracking, memory: Memory) -> None:
    tracking.send("track", call("escaped", properties={"note": "\\u0000"}))
    assert landed(memory) == {"escaped"}


def test_the_batch_context_applies_to_its_events(tracking: Tracking, memory: Memory) -> None:
    tracking.send("batch", {"context": {"channel": "email", "department": "Marketing"}, "batch": [call("ctx")]})
    event = memory.timeline(memory.lookup(user_id="u-1")["customer"]["id"])[0]
    assert (event["channel"], event["department"]) == ("email", "marketing")


def test_a_long_locale_never_causes_a_server_error(tracking: Tracking) -> None:
    locale = "es-" + "-".join(["abcdefgh"] * 5)
    response = tracking.post("identify", {"userId": "u-2", "traits": {"locale": locale}})
    assert response.status_code < 500, response.text


def test_a_long_locale_is_rejected_alone(tracking: Tracking, memory: Memory) -> None:
    locale = "es-" + "-".join(["abcdefgh"] * 5)
    bad = {"type": "identify", "userId": "u-2", "traits": {"locale": locale}}
    batch_rejects(tracking, memory, bad, "invalid_trait")


def test_the_tracking_api_only_takes_posts(tracking: Tracking) -> None:
    is_error(tracking.client.get("/v1/track"), 405, "method_not_allowed")
    is_error(tracking.client.post("/v1/unknown", json={}), 404, "not_found")


def test_browsers_may_send_events_from_other_origins(tracking: Tracking) -> None:
    preflight = tracking.client.options("/v1/t", headers={
        "Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization",
    })
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    management = tracking.client.options("/api/v1/customers", headers={
        "Origin": "https://shop.example.com", "Access-Control-Request-Method": "GET",
    })
    assert "access-control-allow-origin" not in management.headers


def test_a_missing_write_key_asks_for_basic_auth(tracking: Tracking) -> None:
    response = tracking.client.post("/v1/track", json={"userId": "u", "event": "E"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
