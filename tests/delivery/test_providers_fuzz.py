"""The providers API fuzzed from its OpenAPI document, beside a stored SMTP provider and one in
the settings: never a 5xx, every error in the stable shape, never a secret in an answer."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.delivery.test_providers import env  # noqa: F401
from tests.ingest.test_openapi_fuzz import stable_error_shape

EXAMPLES_PER_OPERATION = 25


def test_the_providers_api_never_answers_5xx(app: Any, admin_token: str, env: Any,  # noqa: F811
                                             subtests: pytest.Subtests) -> None:
    from trato.core.db import unit_of_work
    from trato.delivery import providers

    env(TRATO_SMS_URL="sandbox://#sms-env")
    with unit_of_work() as session:
        providers.add_provider(session, actor="test", name="mail", url="smtp://u:top-secret-1@127.0.0.1:9?timeout=1")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=r"^/api/v1/providers")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == {
        "GET /api/v1/providers", "POST /api/v1/providers", "GET /api/v1/providers/{name}",
        "PATCH /api/v1/providers/{name}", "DELETE /api/v1/providers/{name}", "POST /api/v1/providers/{name}/test"}
    auth = {"Authorization": f"Bearer {admin_token}"}
    for operation in operations:
        strategies = [operation.as_strategy(GenerationMode.NEGATIVE), operation.as_strategy()]

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies), name=st.sampled_from(["mail", "sms-env", "nobody"]))
        def fuzz(case: Any, name: str) -> None:
            if case.path_parameters and "name" in case.path_parameters and case.method != "DELETE":
                case.path_parameters["name"] = name
            response = case.call(headers=auth)
            case.validate_response(response, checks=[not_a_server_error])
            stable_error_shape(response)
            assert "top-secret-1" not in response.text

        with subtests.test(operation=operation.label):
            fuzz()
