"""``Idempotency-Key`` with payment-API semantics."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.usefixtures("immediate_queue")


def test_the_same_key_and_body_replays_the_first_response(api: Any, sandbox: Any, send_body: Any) -> None:
    headers = {"Idempotency-Key": "order-1"}
    first = api.post("/api/v1/messages", json=send_body(), headers=headers)
    again = api.post("/api/v1/messages", json=send_body(), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.json() == first.json()
    assert len(sandbox.find(first.json()["id"])) == 1
    assert len(sandbox.sent) == 1


def test_the_same_key_with_another_body_is_a_422(api: Any, sandbox: Any, send_body: Any) -> None:
    headers = {"Idempotency-Key": "order-2"}
    assert api.post("/api/v1/messages", json=send_body(), headers=headers).status_code == 202
    other = api.post("/api/v1/messages", json=send_body(data={"invoice": "F-2"}), headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert len(sandbox.sent) == 1


def test_a_key_still_in_flight_is_a_409(api: Any, sandbox: Any, send_body: Any) -> None:
    from trato.core.db import unit_of_work
    from trato.delivery import idempotency

    body = send_body()
    api.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "probe"})
    with unit_of_work() as s:
        principal = _principal_of(s)  # the calling token's
    # Another request with this key has claimed it and not finished.
    assert idempotency.claim(principal=principal, key="busy",
                             body_sha256=idempotency.request_hash(_validated(body))) is None
    response = api.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "busy"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_flight"


def test_a_failed_request_gives_its_key_back(api: Any, sandbox: Any, send_body: Any) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    missing = api.post("/api/v1/messages", json=send_body(communication="not-yet"), headers=headers)
    assert missing.status_code == 404
    # Nothing was done: the same key may carry the corrected request.
    assert api.post("/api/v1/messages", json=send_body(), headers=headers).status_code == 202


def test_keys_belong_to_one_client(api: Any, client: Any, sandbox: Any, send_body: Any) -> None:
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        _, other = service.create_token(s, name="other system", role="editor", actor="test")
    first = api.post("/api/v1/messages", json=send_body(), headers={"Idempotency-Key": "shared"}).json()
    second = client.post("/api/v1/messages", json=send_body(),
                         headers={"Idempotency-Key": "shared", "Authorization": f"Bearer {other}"})
    assert second.status_code == 202
    assert second.json()["id"] != first["id"]


def _principal_of(session: Any) -> str:
    from sqlalchemy import select

    from trato.delivery.models import IdempotencyKey

    return session.scalar(select(IdempotencyKey.principal))


def _validated(body: dict[str, Any]) -> dict[str, Any]:
    from trato.delivery.schemas import SendIn

    return SendIn.model_validate(body).model_dump(mode="json")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(st.tuples(st.sampled_from(["k1", "k2", "k3"]), st.sampled_from(["F-1", "F-2"])),
                         min_size=1, max_size=6))
def test_any_sequence_of_keyed_requests_sends_once_per_key(api: Any, sandbox: Any, send_body: Any,
                                                           requests: list[tuple[str, str]]) -> None:
    """Per key: the first body sends once; the same body replays it; another body is refused."""
    first_body: dict[str, str] = {}
    first_id: dict[str, str] = {}
    try:
        for key, invoice in requests:
            response = api.post("/api/v1/messages", json=send_body(data={"invoice": invoice, "amount": 3}),
                                headers={"Idempotency-Key": key})
            if key not in first_body:
                assert response.status_code == 202
                first_body[key], first_id[key] = invoice, response.json()["id"]
            elif invoice == first_body[key]:
                assert response.status_code == 202
                assert response.headers["Idempotent-Replayed"] == "true"
                assert response.json()["id"] == first_id[key]
            else:
                assert response.status_code == 422
        assert sorted(r.message.message_id for r in sandbox.sent) == sorted(first_id.values())
    finally:
        sandbox.sent.clear()
        _delete_sends()


def _delete_sends() -> None:
    from sqlalchemy import delete

    from trato.core.db import unit_of_work
    from trato.delivery.models import IdempotencyKey, Message, MessageEvent

    with unit_of_work() as s:
        s.execute(delete(MessageEvent))
        s.execute(delete(Message))
        s.execute(delete(IdempotencyKey))
