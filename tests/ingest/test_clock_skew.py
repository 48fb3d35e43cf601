"""Segment's clock-skew correction: occurred_at = receivedAt - (sentAt - timestamp)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from trato.core.clock import utcnow
from trato.ingest import segment
from tests.ingest.tracking import Memory, Tracking, is_error, iso, when

HOUR = timedelta(hours=1)


def stored(tracking: Tracking, memory: Memory, body: dict, call: str = "track") -> dict:
    tracking.send(call, {"userId": "clock", "event": "Clock Checked", **body})
    return memory.event(memory.lookup(user_id="clock")["customer"]["id"], body["messageId"])


def test_a_client_clock_an_hour_ahead_is_corrected(tracking: Tracking, memory: Memory) -> None:
    client_now = utcnow() + HOUR
    event = stored(tracking, memory, {
        "messageId": "ahead", "timestamp": iso(client_now - timedelta(seconds=5)), "sentAt": iso(client_now),
    })
    occurred, received = when(event["occurred_at"]), when(event["received_at"])
    assert occurred == received - timedelta(seconds=5)
    assert occurred < utcnow()


def test_a_client_clock_an_hour_behind_is_corrected(tracking: Tracking, memory: Memory) -> None:
    client_now = utcnow() - HOUR
    event = stored(tracking, memory, {
        "messageId": "behind", "timestamp": iso(client_now - timedelta(minutes=3)), "sentAt": iso(client_now),
    })
    assert when(event["occurred_at"]) == when(event["received_at"]) - timedelta(minutes=3)


def test_without_sent_at_the_timestamp_is_taken_as_it_is(tracking: Tracking, memory: Memory) -> None:
    timestamp = iso(utcnow() + HOUR)
    event = stored(tracking, memory, {"messageId": "no-sent-at", "timestamp": timestamp})
    assert when(event["occurred_at"]) == when(timestamp)


def test_without_timestamp_the_event_happened_when_received(tracking: Tracking, memory: Memory) -> None:
    event = stored(tracking, memory, {"messageId": "no-timestamp", "sentAt": iso(utcnow() + HOUR)})
    assert event["occurred_at"] == event["received_at"]


def test_an_unreadable_sent_at_is_ignored(tracking: Tracking, memory: Memory) -> None:
    timestamp = "2024-05-05T10:00:00.000Z"
    event = stored(tracking, memory, {"messageId": "bad-sent-at", "timestamp": timestamp, "sentAt": "yesterday"})
    assert when(event["occurred_at"]) == when(timestamp)


def test_epoch_timestamps_in_seconds_and_milliseconds(tracking: Tracking, memory: Memory) -> None:
    seconds = stored(tracking, memory, {"messageId": "epoch-s", "timestamp": 1714903200})
    millis = stored(tracking, memory, {"messageId": "epoch-ms", "timestamp": 1714903200123})
    assert when(seconds["occurred_at"]) == datetime(2024, 5, 5, 10, 0, tzinfo=UTC)
    assert when(millis["occurred_at"]) == datetime(2024, 5, 5, 10, 0, 0, 123000, tzinfo=UTC)


def test_batch_sent_at_applies_unless_the_event_has_its_own(tracking: Tracking, memory: Memory) -> None:
    client_now = utcnow() + HOUR
    tracking.send("batch", {"sentAt": iso(client_now), "batch": [
        {"type": "track", "userId": "clock", "event": "A", "messageId": "batch-sent-at",
         "timestamp": iso(client_now - timedelta(seconds=30))},
        {"type": "track", "userId": "clock", "event": "B", "messageId": "own-sent-at",
         "timestamp": iso(client_now - timedelta(seconds=30)), "sentAt": iso(client_now - timedelta(seconds=10))},
    ]})
    customer_id = memory.lookup(user_id="clock")["customer"]["id"]
    first, second = memory.event(customer_id, "batch-sent-at"), memory.event(customer_id, "own-sent-at")
    assert when(first["occurred_at"]) == when(first["received_at"]) - timedelta(seconds=30)
    assert when(second["occurred_at"]) == when(second["received_at"]) - timedelta(seconds=20)


def test_a_skew_that_leaves_the_calendar_is_refused_not_a_server_error(tracking: Tracking) -> None:
    response = tracking.post("track", {"userId": "clock", "event": "E", "timestamp": "1970-01-01T00:00:00Z",
                                       "sentAt": "9000-01-01T00:00:00Z"})
    error = is_error(response, 400, "invalid_event")
    assert "sentAt" in error["message"]


def test_an_unreadable_timestamp_is_refused(tracking: Tracking) -> None:
    error = is_error(tracking.post("track", {"userId": "clock", "event": "E", "timestamp": "next tuesday"}),
                     400, "invalid_event")
    assert "timestamp" in error["message"]


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    skew=st.timedeltas(min_value=-timedelta(days=2), max_value=timedelta(days=2)),
    delay=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1)),
    received_at=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
)
def test_correction_removes_any_skew(skew: timedelta, delay: timedelta, received_at: datetime) -> None:
    """Whatever the client's clock says, the event happened ``delay`` before it arrived."""
    client_sent = received_at + skew
    message = {"userId": "u", "event": "E", "timestamp": client_sent - delay, "sentAt": client_sent.isoformat()}
    message["timestamp"] = message["timestamp"].isoformat()
    event = segment.parse(message, call_type="track", received_at=received_at)
    assert event.occurred_at == received_at - delay
