"""The content API fuzzed from its OpenAPI document with real ids in the path: never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.content.factory import make_communication
from tests.ingest.test_openapi_fuzz import stable_error_shape

EXAMPLES_PER_OPERATION = 20


def test_content_api_never_answers_5xx(app: Any, admin_token: str, subtests: pytest.Subtests) -> None:
    from trato.content import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        communication = make_communication(s, actor="token:someone else")
        service.create_block(s, key="firma", kind="signature", name="Firma", body={"es": "Un saludo"}, actor="test")
        ids = {"communication_id": communication.id, "version_id": communication.latest_version_id, "key": "firma"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
        path_regex=r"^/api/v1/(communications|content-blocks)")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    auth = {"Authorization": f"Bearer {admin_token}"}
    for operation in operations:
        real = {name: value for name, value in ids.items() if f"{{{name}}}" in operation.path}
        strategies = [operation.as_strategy(GenerationMode.NEGATIVE)]
        if real:
            strategies.append(operation.as_strategy(path_parameters=real))
        else:
            strategies.append(operation.as_strategy())

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies))
        def fuzz(case: Any) -> None:
            response = case.call(headers=auth)
            case.validate_response(response, checks=[not_a_server_error])
            stable_error_shape(response)

        with subtests.test(operation=operation.label):
            fuzz()
