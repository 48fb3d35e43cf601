"""Whatever arrives at the tracking API, the answer is a 2xx or a 4xx with the stable error shape."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.tracking import CALLS, ENDPOINTS, Tracking, basic_auth

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
timestamps = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | st.integers() | json_values
names = st.text(max_size=300) | json_values
words = st.sampled_from(["Order Completed", "Purchase", "web", "app", "email", "ES", "Europe/Madrid", "es-ES",
                         "+34 612 345 678", "ana@example.com", "", " ", "\u0000", "x" * 600])


def objects(keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), values, max_size=len(keys)) | json_values


traits = objects(
    ["email", "phone", "firstName", "name", "locale", "timezone", "country", "birthday", "createdAt", "plan"],
    words | names,
)
context = objects(["traits", "device", "externalIds", "channel", "department", "library", "ip"], st.one_of(
    traits, words,
    st.fixed_dictionaries({"token": words | names}),
    st.lists(st.fixed_dictionaries({"id": words | names, "type": st.sampled_from(["crm_id", "Bad Kind", "email"])}),
             max_size=3),
))
properties = objects(["revenue", "total", "channel", "department", "name", "products"],
                     words | names | st.decimals(allow_nan=False, allow_infinity=False).map(float))
segment_calls = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(CALLS) | json_values,
    "userId": words | names, "anonymousId": words | names, "previousId": words | names,
    "groupId": words | names, "event": words | names, "name": words | names,
    "messageId": st.text(max_size=140) | json_values,
    "timestamp": timestamps, "originalTimestamp": timestamps, "sentAt": timestamps,
    "traits": traits, "properties": properties, "context": context, "integrations": json_values,
    "channel": words | names,
})


def answered_well(response: Any) -> None:
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code == 200:
        assert set(body) <= {"success", "accepted", "rejected"} and isinstance(body["accepted"], int), body
        for rejection in body.get("rejected", []):
            assert set(rejection) == {"index", "messageId", "code", "message"}, rejection
        return
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str), body


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS), body=json_values, compress=st.booleans())
def test_any_json_value(tracking: Tracking, endpoint: str, body: Any, compress: bool) -> None:
    data = json.dumps(body).encode()
    headers = {**basic_auth(tracking.write_key), "Content-Type": "application/json"}
    if compress:
        data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
    answered_well(tracking.client.post(endpoint, content=data, headers=headers))


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS), body=st.binary(max_size=300), claims_gzip=st.booleans())
def test_any_bytes(tracking: Tracking, endpoint: str, body: bytes, claims_gzip: bool) -> None:
    headers = basic_auth(tracking.write_key)
    if claims_gzip:
        headers["Content-Encoding"] = "gzip"
    answered_well(tracking.client.post(endpoint, content=body, headers=headers))


@settings(FUZZ, max_examples=100)
@given(call=segment_calls, batched=st.booleans(), batch_extra=objects(["sentAt", "context"], timestamps | context))
def test_segment_shaped_calls(tracking: Tracking, call: dict[str, Any], batched: bool, batch_extra: Any) -> None:
    """Calls with Segment's fields holding anything: rejected one by one, never a server error."""
    if batched:
        extra = batch_extra if isinstance(batch_extra, dict) else {}
        response = tracking.post("batch", {**extra, "batch": [call, {"type": "track", "userId": "u", "event": "E"}]})
        answered_well(response)
        if "context" not in extra:  # the good call is taken whatever its neighbour holds
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] >= 1
    else:
        endpoint = call.get("type") if call.get("type") in CALLS else "track"
        answered_well(tracking.post(endpoint, call))


def test_no_body_at_all(tracking: Tracking, subtests: pytest.Subtests) -> None:
    for endpoint in ENDPOINTS:
        with subtests.test(endpoint=endpoint):
            answered_well(tracking.client.post(endpoint, headers=basic_auth(tracking.write_key)))
