"""Exactly once per (source, messageId): resends, duplicates in a batch, racing requests."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from tests.ingest.tracking import Memory, Tracking, basic_auth


def order(message_id: str, user: str = "buyer", revenue: float = 10.0) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": "Order Completed", "messageId": message_id,
            "properties": {"revenue": revenue}, "timestamp": "2024-04-01T10:00:00Z"}


def test_a_resent_event_is_stored_once(tracking: Tracking, memory: Memory) -> None:
    first = tracking.send("track", order("m-1"))
    again = tracking.send("track", {**order("m-1"), "properties": {"revenue": 99}})
    assert first == again == {"success": True, "accepted": 1}
    view = memory.lookup(user_id="buyer")
    events = memory.timeline(view["customer"]["id"])
    assert [e["revenue"] for e in events] == [10.0]  # the first copy stays
    computed = view["customer"]["computed"]
    assert (computed["event_count"], computed["purchase_count"], computed["lifetime_value"]) == (1, 1, {"EUR": 10.0})
    assert view["event_counts"] == {"Order Completed": 1}


def test_duplicates_inside_one_batch_are_stored_once(tracking: Tracking, memory: Memory) -> None:
    result = tracking.send("batch", {"batch": [order("m-1"), order("m-2"), order("m-1"), order("m-2"), order("m-1")]})
    assert result == {"success": True, "accepted": 5}
    view = memory.lookup(user_id="buyer")
    assert sorted(e["message_id"] for e in memory.timeline(view["customer"]["id"])) == ["m-1", "m-2"]
    assert view["customer"]["computed"]["event_count"] == 2
    assert view["customer"]["computed"]["lifetime_value"] == {"EUR": 20.0}


def test_a_resent_identify_does_not_bring_back_older_traits(tracking: Tracking, memory: Memory) -> None:
    older = {"userId": "buyer", "messageId": "id-1", "traits": {"plan": "basic"}, "timestamp": "2024-04-01T10:00:00Z"}
    newer = {"userId": "buyer", "messageId": "id-2", "traits": {"plan": "premium"}, "timestamp": "2024-04-02T10:00:00Z"}
    for body in (older, newer, older):
        tracking.send("identify", body)
    customer = memory.lookup(user_id="buyer")["customer"]
    assert customer["traits"]["plan"] == "premium"
    assert customer["computed"]["event_count"] == 2


def test_the_same_message_id_from_another_source_is_another_event(
    tracking: Tracking, second_source: Tracking, memory: Memory
) -> None:
    tracking.send("track", order("shared-id"))
    second_source.send("track", order("shared-id"))
    second_source.send("track", order("shared-id"))
    view = memory.lookup(user_id="buyer")
    events = memory.timeline(view["customer"]["id"])
    assert len(events) == 2
    assert len({e["source_id"] for e in events}) == 2
    assert view["customer"]["computed"]["event_count"] == 2
    assert view["customer"]["computed"]["lifetime_value"] == {"EUR": 20.0}


def test_concurrent_batches_with_overlapping_message_ids(live_server: str, write_key: str, memory: Memory) -> None:
    """Threads race the same and overlapping messageIds at a real server: each stored once."""
    senders, rounds, per_batch = 4, 3, 30
    barrier = threading.Barrier(senders)
    failures: list[str] = []
    sent: set[str] = set()

    def send(worker: int) -> None:
        with httpx.Client(base_url=live_server, headers=basic_auth(write_key), timeout=30) as http:
            for r in range(rounds):
                # Workers overlap by half a batch; every round also repeats the previous round's ids.
                start = r * per_batch + (worker % 2) * (per_batch // 2)
                batch = [order(f"race-{i}", user=f"racer-{i % 3}") for i in range(start, start + per_batch)]
                barrier.wait(timeout=30)
                response = http.post("/v1/batch", json={"batch": batch})
                if response.status_code != 200 or response.json() != {"success": True, "accepted": per_batch}:
                    failures.append(f"worker {worker} round {r}: {response.status_code} {response.text}")

    for worker in range(senders):
        for r in range(rounds):
            start = r * per_batch + (worker % 2) * (per_batch // 2)
            sent.update(f"race-{i}" for i in range(start, start + per_batch))
    threads = [threading.Thread(target=send, args=(w,)) for w in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert not failures, failures

    stored: set[str] = set()
    for user in ("racer-0", "racer-1", "racer-2"):
        view = memory.lookup(user_id=user)
        events = memory.timeline(view["customer"]["id"])
        ids = [e["message_id"] for e in events]
        assert len(ids) == len(set(ids))
        stored.update(ids)
        computed = view["customer"]["computed"]
        assert computed["event_count"] == len(ids)
        assert computed["purchase_count"] == len(ids)
        assert computed["lifetime_value"] == {"EUR": 10.0 * len(ids)}
        assert view["event_counts"] == {"Order Completed": len(ids)}
    assert stored == sent
