"""The management API fuzzed from its own OpenAPI document: no input makes it answer 5xx."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.ingest.tracking import Tracking

EXAMPLES_PER_OPERATION = 25


def stable_error_shape(response: Any) -> None:
    if response.status_code < 400:
        return
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body


def test_management_api_never_answers_5xx(
    app: Any, admin_token: str, tracking: Tracking, subtests: pytest.Subtests
) -> None:
    """Valid and invalid requests to every /api/v1 operation and /healthz, as an admin.

    Path parameters are sometimes a real customer (one that absorbed another), so that the
    fuzzing reaches past the look-up.
    """
    tracking.send("batch", {"batch": [
        {"type": "identify", "anonymousId": "fuzz-anon", "traits": {"email": "fuzz@example.com"}},
        {"type": "track", "userId": "fuzz-user", "event": "Order Completed", "properties": {"revenue": 5}},
        {"type": "identify", "userId": "fuzz-user", "traits": {"email": "fuzz@example.com", "firstName": "Fuzz"}},
    ]})
    customer_id = tracking.client.get(
        "/api/v1/customers/lookup", params={"user_id": "fuzz-user"}, headers={"Authorization": f"Bearer {admin_token}"}
    ).json()["customer"]["id"]

    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=r"^/(api/v1/|healthz$)")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    auth = {"Authorization": f"Bearer {admin_token}"}

    for operation in operations:
        strategies = [operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE)]
        if "{customer_id}" in operation.path:
            strategies.append(operation.as_strategy(path_parameters={"customer_id": customer_id}))

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies))
        def fuzz(case: Any) -> None:
            response = case.call(headers=auth)
            case.validate_response(response, checks=[not_a_server_error])
            stable_error_shape(response)

        with subtests.test(operation=operation.label):
            fuzz()


def test_traits_with_integers_beyond_64_bits(api: Any) -> None:
    """Found by the fuzz as 500s (orjson cannot encode them); the tracking API refuses such JSON."""
    created = api.post("/api/v1/customers", json={"traits": {"first_name": "Ana"}})
    assert created.status_code == 201, created.text
    customer_id = created.json()["customer"]["id"]
    for response in (
        api.post("/api/v1/customers", json={"identities": [], "traits": {"": -9223372036854775809}}),
        api.patch(f"/api/v1/customers/{customer_id}/traits", json={"traits": {"n": 2**64}}),
    ):
        assert 400 <= response.status_code < 500, response.text
        stable_error_shape(response)


def test_nul_characters_never_cause_a_server_error(api: Any, subtests: pytest.Subtests) -> None:
    """PostgreSQL refuses NUL in text and JSONB: found by the fuzz as 500s on PostgreSQL."""
    created = api.post("/api/v1/customers", json={"traits": {"first_name": "Ana"}})
    customer_id = created.json()["customer"]["id"]
    requests = {
        "search": lambda: api.get("/api/v1/customers", params={"q": "a\x00"}),
        "lookup": lambda: api.get("/api/v1/customers/lookup", params={"user_id": "\x00"}),
        "customer": lambda: api.get("/api/v1/customers/cus_%00"),
        "timeline": lambda: api.get(f"/api/v1/customers/{customer_id}/timeline", params={"channel": "\x00"}),
        "traits": lambda: api.patch(f"/api/v1/customers/{customer_id}/traits", json={"traits": {"": "\x00"}}),
        "note": lambda: api.post(f"/api/v1/customers/{customer_id}/notes", json={"text": "a\x00", "department": "x"}),
        "identity": lambda: api.post(f"/api/v1/customers/{customer_id}/identities",
                                     json={"kind": "crm_id", "value": "a\x00"}),
        "source": lambda: api.post("/api/v1/sources", json={"name": "web\x00"}),
    }
    for name, request in requests.items():
        with subtests.test(request=name):
            response = request()
            assert response.status_code < 500, response.text
            stable_error_shape(response)
