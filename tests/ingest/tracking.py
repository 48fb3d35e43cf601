"""Sending Segment calls to trato and reading back what the customer memory made of them."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).parents[1] / "fixtures" / "segment"
CALLS = ("identify", "track", "page", "screen", "group", "alias")
ENDPOINTS = tuple(f"/v1/{c}" for c in (*CALLS, "batch"))


def basic_auth(write_key: str) -> dict[str, str]:
    """The write key as Segment's libraries send it: the HTTP Basic user, no password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


@cache
def _load(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text(encoding="utf-8")


def sample(name: str, write_key: str | None = None) -> dict[str, Any]:
    """A recorded sample payload; a ``writeKey`` placeholder in it becomes ``write_key``."""
    body = json.loads(_load(name))
    if write_key is not None and "writeKey" in body:
        body["writeKey"] = write_key
    return copy.deepcopy(body)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert the stable error shape with this status and code; return the error."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return body["error"]


class Tracking:
    """A sending system: posts tracking calls with its write key."""

    def __init__(self, client: Any, write_key: str) -> None:
        self.client = client
        self.write_key = write_key

    def post(
        self, call: str, body: Any, *, write_key: str | None = None, compress: bool = False,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``body`` (an object to encode, or raw bytes) to ``/v1/<call>``."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **basic_auth(self.write_key if write_key is None else write_key)}
        if compress:
            data = gzip.compress(data)
            sent["Content-Encoding"] = "gzip"
        sent.update(headers or {})
        return self.client.post(f"/v1/{call}", content=data, headers=sent)

    def send(self, call: str, body: Any, **options: Any) -> dict[str, Any]:
        """Post and require a 200 that accepted every event."""
        response = self.post(call, body, **options)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["success"] is True, result
        return result


class Memory:
    """The management API's view of the customer memory."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def lookup(self, **identity: str) -> dict[str, Any]:
        response = self.api.get("/api/v1/customers/lookup", params=identity)
        assert response.status_code == 200, response.text
        return response.json()

    def missing(self, **identity: str) -> None:
        response = self.api.get("/api/v1/customers/lookup", params=identity)
        assert response.status_code == 404, response.text

    def customer(self, customer_id: str) -> dict[str, Any]:
        response = self.api.get(f"/api/v1/customers/{customer_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def timeline(self, customer_id: str, **params: Any) -> list[dict[str, Any]]:
        response = self.api.get(f"/api/v1/customers/{customer_id}/timeline", params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        return response.json()["items"]

    def merges(self, customer_id: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/api/v1/customers/{customer_id}/merges")
        assert response.status_code == 200, response.text
        return response.json()

    def event(self, customer_id: str, message_id: str) -> dict[str, Any]:
        found = [e for e in self.timeline(customer_id) if e["message_id"] == message_id]
        assert len(found) == 1, f"{message_id}: {found}"
        return found[0]


def identities(view: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["kind"], i["value"]): i for i in view["identities"]}
