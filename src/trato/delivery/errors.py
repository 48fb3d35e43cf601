"""Delivery's errors, each with a stable code."""

from __future__ import annotations

from trato.core.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, Unauthorized


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


class InvalidPushRegistration(InvalidInput):
    """A device token or browser subscription that cannot be registered as given."""

    code = "invalid_push_registration"


class PushRegistrationNotFound(NotFound):
    code = "push_registration_not_found"


class PushNotWebPush(NotFound):
    """Asked for the Web Push key while push goes through another adapter."""

    code = "push_not_webpush"


class ForgedCallback(BadSignature):
    """A callback whose signature does not verify, for providers whose own helpers answer 403
    (Twilio): the same code as ``BadSignature``, another status."""

    status_code = 403


class MailTooLarge(PayloadTooLarge):
    """A raw mail posted to the inbound webhook is larger than the e-mail provider accepts."""

    code = "mail_too_large"


class ProviderExists(Conflict):
    """Another provider has this name (stored, or written in the settings)."""

    code = "provider_exists"


class InvalidProvider(InvalidInput):
    """A provider's adapter, channels or settings are not valid; ``details.field`` names the field."""

    code = "invalid_provider"


class ProviderReadOnly(Conflict):
    """A provider written in the settings (TRATO_*_URL) is changed there, not through the API."""

    code = "provider_in_settings"
