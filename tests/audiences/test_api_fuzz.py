"""The segments API fuzzed from its OpenAPI document with real ids in the path, and random condition
trees (valid and broken) through preview: never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.audiences.data import trees
from tests.ingest.test_openapi_fuzz import stable_error_shape

EXAMPLES_PER_OPERATION = 20


def test_segments_api_never_answers_5xx(app: Any, admin_token: str, subtests: pytest.Subtests) -> None:
    from trato.audiences import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        segment = service.create_segment(s, name="Madrid", definition={"type": "trait", "trait": "city", "op": "eq",
                                                                       "value": "Madrid"}, actor="test")
        static = service.create_segment(s, name="Lista", kind="static", actor="test")
        snapshot = service.take_snapshot(s, segment_id=segment.id, actor="test")
        ids = {"segment_id": segment.id, "snapshot_id": snapshot.id}
        static_id = static.id
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=r"^/api/v1/segments")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11, [op.label for op in operations]
    auth = {"Authorization": f"Bearer {admin_token}"}
    for operation in operations:
        real = {name: value for name, value in ids.items() if f"{{{name}}}" in operation.path}
        if operation.path.endswith("/list"):
            real["segment_id"] = static_id
        strategies = [operation.as_strategy(GenerationMode.NEGATIVE)]
        strategies.append(operation.as_strategy(path_parameters=real) if real else operation.as_strategy())

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies))
        def fuzz(case: Any) -> None:
            if operation.method.upper() == "DELETE" and case.path_parameters == real:
                return  # deleting the fixture would only make the rest of the run 404
            response = case.call(headers=auth)
            case.validate_response(response, checks=[not_a_server_error])
            stable_error_shape(response)

        with subtests.test(operation=operation.label):
            fuzz()


json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=3), max_leaves=8)


def _mutate(tree: Any, data: Any) -> Any:
    """A valid tree with one node's value swapped for random JSON."""
    if isinstance(tree, dict) and tree:
        key = data.draw(st.sampled_from(sorted(tree)))
        if data.draw(st.booleans()):
            return {**tree, key: data.draw(json_value)}
        return {**tree, key: _mutate(tree[key], data)}
    if isinstance(tree, list) and tree:
        i = data.draw(st.integers(0, len(tree) - 1))
        return [*tree[:i], _mutate(tree[i], data), *tree[i + 1:]]
    return data.draw(json_value)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          database=None)
@given(tree=trees, data=st.data())
def test_preview_of_any_tree_is_an_answer_or_a_named_error(api, tree, data):
    definition = _mutate(tree, data) if data.draw(st.booleans()) else tree
    response = api.post("/api/v1/segments/preview", json={"definition": definition})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        error = response.json()["error"]
        assert error["code"] in ("invalid_segment", "validation_error", "unknown_segment", "segment_too_deep",
                                 "segment_too_large"), error
        if error["code"] != "validation_error":
            assert error["details"]["path"].startswith("definition"), error
