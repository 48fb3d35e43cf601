"""The push registration API fuzzed from its OpenAPI document, against a real customer and real
browser subscriptions: never a 5xx, every error in the stable shape."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.ingest.test_openapi_fuzz import stable_error_shape

EXAMPLES_PER_OPERATION = 30


@pytest.mark.usefixtures("sandbox")
def test_the_push_registration_api_never_answers_5xx(app: Any, admin_token: str, world: dict[str, str],
                                                     webpush_service: Any, subtests: pytest.Subtests) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=r"push")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == {
        "POST /api/v1/customers/{customer_id}/push-registrations",
        "GET /api/v1/customers/{customer_id}/push-registrations",
        "DELETE /api/v1/customers/{customer_id}/push-registrations/{registration_id}",
        "GET /api/v1/push/application-server-key"}
    auth = {"Authorization": f"Bearer {admin_token}"}
    subscription = webpush_service.subscribe().subscription()
    for operation in operations:
        strategies = [operation.as_strategy(GenerationMode.NEGATIVE), operation.as_strategy()]

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies), real=st.integers(0, 2))
        def fuzz(case: Any, real: int) -> None:
            if real and case.path_parameters is not None and "customer_id" in case.path_parameters:
                case.path_parameters["customer_id"] = world["customer_id"]
            if real == 2 and isinstance(case.body, dict) and case.body.get("platform") == "webpush":
                case.body["subscription"] = {**subscription, **(case.body.get("subscription") or {})} \
                    if isinstance(case.body.get("subscription"), dict) else subscription
                case.body.pop("token", None)
            response = case.call(headers=auth)
            case.validate_response(response, checks=[not_a_server_error])
            stable_error_shape(response)

        with subtests.test(operation=operation.label):
            fuzz()
