"""The official Segment and RudderStack Python libraries, unchanged, against trato on a real port."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import rudderstack.analytics as rudder
import segment.analytics as segment
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from tests.ingest.tracking import Memory, identities, when

SIGNED_UP = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)


def drive(sdk: Any, prefix: str) -> None:
    """Every call type once, as an application would make them (module or client alike)."""
    user, anonymous = f"{prefix}-user", f"{prefix}-anon"
    sdk.page(anonymous_id=anonymous, category="Marketing", name="Pricing",
             properties={"url": "https://www.initech.com/pricing", "path": "/pricing"},
             message_id=f"{prefix}-page")
    sdk.identify(user_id=user, anonymous_id=anonymous, message_id=f"{prefix}-identify", traits={
        "email": f"{prefix.upper()}@Example.com", "firstName": "Ana", "lastName": "García",
        "createdAt": SIGNED_UP, "birthday": date(1985, 4, 12), "plan": "premium",
    })
    sdk.track(user_id=user, event="Order Completed", message_id=f"{prefix}-order",
              properties={"order_id": f"{prefix}-1", "revenue": Decimal("19.99"), "currency": "EUR"},
              context={"traits": {"email": f"{prefix}@example.com"}})
    sdk.screen(user_id=user, name="Home", properties={"section": "feed"}, message_id=f"{prefix}-screen",
               context={"device": {"token": f"{prefix}-push-token", "type": "android"}})
    sdk.group(user_id=user, group_id=f"{prefix}-company", traits={"name": "Initech", "employees": 329},
              message_id=f"{prefix}-group")
    sdk.alias(previous_id=f"{prefix}-old-anon", user_id=user, message_id=f"{prefix}-alias")


def landed(memory: Memory, prefix: str, *, channels: dict[str, str]) -> None:
    """What :func:`drive` sent is in the customer memory, once."""
    view = memory.lookup(user_id=f"{prefix}-user")
    customer = view["customer"]
    assert memory.lookup(anonymous_id=f"{prefix}-anon")["customer"]["id"] == customer["id"]
    assert memory.lookup(anonymous_id=f"{prefix}-old-anon")["customer"]["id"] == customer["id"]
    assert {("user_id", f"{prefix}-user"), ("anonymous_id", f"{prefix}-anon"), ("email", f"{prefix}@example.com"),
            ("device_token", f"{prefix}-push-token")} <= set(identities(view))
    assert (customer["first_name"], customer["last_name"]) == ("Ana", "García")
    assert customer["customer_since"] == "2021-03-04" and customer["birthday"] == "1985-04-12"
    assert customer["traits"]["plan"] == "premium"

    events = {e["message_id"]: e for e in memory.timeline(customer["id"])}
    assert set(events) == {f"{prefix}-{n}" for n in ("page", "identify", "order", "screen", "group", "alias")}
    kinds = {m.removeprefix(f"{prefix}-"): (e["kind"], e["name"]) for m, e in events.items()}
    assert kinds == {
        "page": ("page", "Pricing"), "identify": ("identify", None), "order": ("purchase", "Order Completed"),
        "screen": ("screen", "Home"), "group": ("group", f"{prefix}-company"), "alias": ("alias", None),
    }
    assert {m.removeprefix(f"{prefix}-"): e["channel"] for m, e in events.items()} == channels
    assert events[f"{prefix}-order"]["revenue"] == 19.99
    assert events[f"{prefix}-group"]["properties"] == {"traits": {"name": "Initech", "employees": 329}}
    for event in events.values():  # the libraries stamp timestamp and sentAt from the same clock
        assert abs((when(event["received_at"]) - when(event["occurred_at"])).total_seconds()) < 30

    computed = customer["computed"]
    assert (computed["event_count"], computed["purchase_count"], computed["lifetime_value"]) == (6, 1, {"EUR": 19.99})


# The website source's default channel (web) applies where a call says none; pages are web, screens app.
CHANNELS = {"page": "web", "identify": "web", "order": "web", "screen": "app", "group": "web", "alias": "web"}


class Failures:
    """Collects what a library reports through its on_error hook."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        self.seen.append(f"{error!r}: {[m.get('messageId') for m in batch]}")


@pytest.fixture
def segment_module(live_server: str, write_key: str) -> Iterator[Any]:
    """The module-level segment.analytics API, configured as its documentation shows."""
    saved = (segment.write_key, segment.host, segment.sync_mode, segment.default_client)
    segment.write_key, segment.host, segment.sync_mode, segment.default_client = write_key, live_server, True, None
    yield segment
    segment.write_key, segment.host, segment.sync_mode, segment.default_client = saved


@pytest.fixture
def rudder_module(live_server: str, write_key: str) -> Iterator[Any]:
    """The module-level rudderstack.analytics API, configured as its documentation shows."""
    saved = (rudder.write_key, rudder.dataPlaneUrl, rudder.sync_mode, rudder.default_client)
    rudder.write_key, rudder.dataPlaneUrl, rudder.sync_mode, rudder.default_client = write_key, live_server, True, None
    yield rudder
    rudder.write_key, rudder.dataPlaneUrl, rudder.sync_mode, rudder.default_client = saved


def test_segment_module_api_in_sync_mode(segment_module: Any, memory: Memory) -> None:
    drive(segment_module, "seg-sync")  # sync mode raises APIError on any answer but 2xx
    landed(memory, "seg-sync", channels=CHANNELS)


def test_segment_client_batches_gzip_and_retries_nothing(live_server: str, write_key: str, memory: Memory) -> None:
    failures = Failures()
    client = SegmentClient(write_key, host=live_server, gzip=True, on_error=failures, max_retries=1,
                           upload_interval=0.05)
    try:
        drive(client, "seg-batch")
        client.flush()
    finally:
        client.shutdown()
    assert failures.seen == []
    landed(memory, "seg-batch", channels=CHANNELS)


def test_rudderstack_module_api_in_sync_mode(rudder_module: Any, memory: Memory) -> None:
    drive(rudder_module, "rs-sync")  # gzip is on by default in this library
    landed(memory, "rs-sync", channels=CHANNELS)


def test_rudderstack_client_batches(live_server: str, write_key: str, memory: Memory) -> None:
    failures = Failures()
    client = RudderClient(write_key, host=live_server, on_error=failures, max_retries=1, upload_interval=0.05)
    try:
        drive(client, "rs-batch")
        client.flush()
    finally:
        client.shutdown()
    assert failures.seen == []
    landed(memory, "rs-batch", channels=CHANNELS)


def test_both_libraries_resending_the_same_calls_store_them_once(
    live_server: str, write_key: str, memory: Memory
) -> None:
    for make in (lambda: SegmentClient(write_key, host=live_server, sync_mode=True, gzip=True),
                 lambda: RudderClient(write_key, host=live_server, sync_mode=True)):
        for _ in range(2):
            drive(make(), "both")
    landed(memory, "both", channels=CHANNELS)
