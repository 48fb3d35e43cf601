"""Delivery's errors, each with a stable code."""

from __future__ import annotations

from trato.core.errors import Conflict, InvalidInput, NotFound, Unauthorized


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


class ProviderNotFound(NotFound):
    """No configured provider has this name (e.g. a callback to /hooks/{name}/… for another one)."""

    code = "provider_not_found"


class BadSignature(Unauthorized):
    """A provider callback whose signature is missing or does not match: forged or misconfigured."""

    code = "bad_signature"


class InvalidCallback(InvalidInput):
    """A signed provider callback whose content cannot be understood."""

    code = "invalid_callback"
