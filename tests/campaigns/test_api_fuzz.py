"""The campaigns API fuzzed from its OpenAPI document, with a real campaign's id in the path: never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.campaigns.conftest import create
from tests.ingest.test_openapi_fuzz import stable_error_shape

EXAMPLES_PER_OPERATION = 15


def test_campaigns_api_never_answers_5xx(app: Any, admin_token: str, campaign_world: dict[str, Any],
                                         subtests: pytest.Subtests) -> None:
    ids = {"campaign_id": create(campaign_world)}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=r"^/api/v1/campaigns")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12, [op.label for op in operations]
    auth = {"Authorization": f"Bearer {admin_token}"}
    for operation in operations:
        real = {name: value for name, value in ids.items() if f"{{{name}}}" in operation.path}
        strategies = [operation.as_strategy(GenerationMode.NEGATIVE)]
        strategies.append(operation.as_strategy(path_parameters=real) if real else operation.as_strategy())

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies))
        def fuzz(case: Any) -> None:
            response = case.call(headers=auth)
            case.validate_response(response, checks=[not_a_server_error])
            stable_error_shape(response)

        with subtests.test(operation=operation.label):
            fuzz()
