"""Fixtures of the segment tests: a few customers made through the customer memory's service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.console.conftest import signed_in  # noqa: F401


@pytest.fixture
def people(database_url: str) -> dict[str, str]:
    """Ana (Madrid, viewed X three times), Luis (Sevilla), Eva (Madrid, no e-mail): name → id."""
    from trato.core.db import unit_of_work
    from trato.customers import service

    now = datetime.now(timezone.utc).replace(microsecond=0)
    found = {}
    with unit_of_work() as s:
        for name, city, email in (("Ana", "Madrid", "ana@example.com"), ("Luis", "Sevilla", "luis@example.com"),
                                  ("Eva", "Madrid", None)):
            identities = [("email", email)] if email else [("phone", "+34600000003")]
            found[name] = service.create_customer(s, traits={"first_name": name, "city": city},
                                                  identities=identities, actor="test").id
        for i in range(3):
            service.record_event(s, customer_id=found["Ana"], kind="track", name="Product Viewed",
                                 occurred_at=now, properties={"product": "X"}, source_id="test",
                                 message_id=f"view-{i}")
    return found


@pytest.fixture
def make_segment(database_url: str) -> Callable[..., str]:
    from trato.audiences import service
    from trato.core.db import unit_of_work

    def make(name: str, definition: dict[str, Any] | None = None, kind: str = "dynamic") -> str:
        with unit_of_work() as s:
            return service.create_segment(s, name=name, kind=kind, definition=definition, actor="test").id

    return make
