"""Delivery's errors, each with a stable code."""

from __future__ import annotations

from trato.core.errors import Conflict, InvalidInput, NotFound


class MessageNotFound(NotFound):
    code = "message_not_found"


class InvalidSend(InvalidInput):
    code = "invalid_send"


class IdempotencyKeyReused(InvalidInput):
    """The same ``Idempotency-Key`` came with another request body."""

    code = "idempotency_key_reused"


class IdempotencyKeyInFlight(Conflict):
    """The first request with this ``Idempotency-Key`` is still being handled."""

    code = "idempotency_key_in_flight"


class MessageStateConflict(Conflict):
    """What was asked does not fit the message's state (e.g. re-queuing one already accepted)."""

    code = "message_state_conflict"
