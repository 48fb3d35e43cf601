from __future__ import annotations

from typing import Any

import pytest

from tests.ingest.tracking import Memory, Tracking


@pytest.fixture
def tracking(client: Any, write_key: str) -> Tracking:
    """The 'website' source (default channel web, department sales) sending calls."""
    return Tracking(client, write_key)


@pytest.fixture
def memory(api: Any) -> Memory:
    return Memory(api)


@pytest.fixture
def second_source(api: Any) -> Tracking:
    """A second source, 'crm', whose messageIds are its own."""
    response = api.post("/api/v1/sources", json={"name": "crm"})
    assert response.status_code == 201, response.text
    return Tracking(api, response.json()["write_key"])
