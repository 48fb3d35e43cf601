"""The send API fuzzed from its OpenAPI document, with real customers and communications: never a
5xx, every error in the stable shape."""

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


@pytest.mark.usefixtures("immediate_queue", "sandbox")
def test_the_messages_api_never_answers_5xx(app: Any, admin_token: str, world: dict[str, str],
                                            subtests: pytest.Subtests) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=r"^/api/v1/messages")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == {
        "POST /api/v1/messages", "GET /api/v1/messages", "GET /api/v1/messages/{message_id}",
        "POST /api/v1/messages/{message_id}/requeue", "POST /api/v1/messages/{message_id}/resolve"}
    auth = {"Authorization": f"Bearer {admin_token}"}
    for operation in operations:
        strategies = [operation.as_strategy(GenerationMode.NEGATIVE), operation.as_strategy()]

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies), real=st.booleans())
        def fuzz(case: Any, real: bool) -> None:
            if real and isinstance(case.body, dict):  # a body that names a real customer and communication
                case.body["customer"] = {"id": world["customer_id"]}
                case.body["communication"] = world["key"]
            response = case.call(headers=auth)
            case.validate_response(response, checks=[not_a_server_error])
            stable_error_shape(response)

        with subtests.test(operation=operation.label):
            fuzz()
