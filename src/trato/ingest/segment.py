"""Segment's tracking spec: one raw call (identify, track, page, screen, group, alias) to a
normalised event, or a rejection that says what is wrong with it.

Follows https://segment.com/docs/connections/spec/common/ — ``messageId`` for exactly-once,
``timestamp`` corrected for the client's clock with ``sentAt``, identities from ``userId``,
``anonymousId``, traits, ``context.traits``, ``context.device.token`` and ``context.externalIds``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import orjson

from trato.core.clock import parse_timestamp
from trato.core.errors import TratoError
from trato.customers import service as customers
from trato.ingest.errors import EventTooLarge, InvalidEvent

CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
PURCHASE_EVENTS = frozenset({"order completed", "purchase", "purchased", "checkout completed"})
MAX_NAME = 200
# The timeline's column widths: longer values are refused here, not left to fail the batch's write.
MAX_CHANNEL = 32
MAX_DEPARTMENT = 64
MAX_IDENTITY_KIND = 64
# A call's top-level 'channel' (set by Segment and RudderStack libraries) names the kind of library
# that sent it, not where the customer was: 'server' says nothing, so the source's default applies.
LIBRARY_CHANNELS: dict[str, str | None] = {"browser": "web", "client": "web", "mobile": "app", "server": None}


@dataclass
class ParsedEvent:
    type: str
    kind: str
    message_id: str
    occurred_at: datetime
    identities: list[tuple[str, str]]
    traits: dict[str, Any]
    name: str | None
    channel: str | None
    department: str | None
    properties: dict[str, Any]
    context: dict[str, Any]
    revenue_cents: int | None = None
    currency: str | None = None
    previous_id: str | None = None
    warnings: list[str] = field(default_factory=list)


def _object(message: dict[str, Any], key: str) -> dict[str, Any]:
    value = message.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent(f"'{key}' must be a JSON object", details={"field": key})
    return value


def _id(message: dict[str, Any], key: str) -> str | None:
    value = message.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidEvent(f"'{key}' must be a string", details={"field": key})
    text = str(value).strip()
    if len(text) > 512:
        raise InvalidEvent(f"'{key}' is longer than 512 characters", details={"field": key})
    return text or None


def _short_text(value: Any, key: str, limit: int | None = None) -> str | None:
    """A name cut to MAX_NAME, or with ``limit`` a label refused when longer."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"'{key}' must be a string", details={"field": key})
    text = value.strip()
    if limit is not None and len(text) > limit:
        raise InvalidEvent(f"'{key}' is longer than {limit} characters", details={"field": key})
    return text[:MAX_NAME] or None


def _library_channel(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in LIBRARY_CHANNELS:
        return LIBRARY_CHANNELS[value.strip().lower()]
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _occurred_at(message: dict[str, Any], received_at: datetime, sent_at: Any) -> datetime:
    """Segment's clock-skew correction: receivedAt - (sentAt - timestamp)."""
    raw = message.get("timestamp") or message.get("originalTimestamp")
    timestamp = parse_timestamp(raw) if raw is not None else None
    if raw is not None and timestamp is None:
        raise InvalidEvent(f"'timestamp' {raw!r} is not an ISO-8601 date", details={"field": "timestamp"})
    if timestamp is None:
        return received_at
    sent = parse_timestamp(message.get("sentAt") or sent_at)
    if sent is None:
        return timestamp
    try:
        return received_at - (sent - timestamp)
    except OverflowError:
        raise InvalidEvent(
            "'sentAt' and 'timestamp' are too far apart to correct the client's clock",
            details={"field": "sentAt"},
        ) from None


def _currency(properties: dict[str, Any], default: str) -> str:
    raw = properties.get("currency")
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str) or not re.fullmatch(r"[A-Za-z]{3}", raw.strip()):
        raise InvalidEvent(
            f"'currency' must be a three-letter ISO 4217 code such as EUR, not {raw!r}",
            details={"field": "properties.currency"},
        )
    return raw.strip().upper()


def _revenue_cents(kind: str, properties: dict[str, Any]) -> int | None:
    raw = properties.get("revenue")
    if raw is None and kind == "purchase":
        raw = properties.get("total")
    if raw is None or isinstance(raw, bool):
        return None
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        raise InvalidEvent("'revenue' must be a number", details={"field": "properties.revenue"}) from None
    if not amount.is_finite() or abs(amount) > Decimal("1e12"):
        raise InvalidEvent("'revenue' is out of range", details={"field": "properties.revenue"})
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _identities(
    message: dict[str, Any], user_id: str | None, anonymous_id: str | None, traits: dict[str, Any],
    context: dict[str, Any], region: str,
) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if user_id:
        found.append(("user_id", user_id))
    if anonymous_id:
        found.append(("anonymous_id", anonymous_id))
    country = traits.get("country") if isinstance(traits.get("country"), str) else None
    for kind in ("email", "phone"):
        if traits.get(kind):
            found.append(customers.normalize_identity(kind, traits[kind], region=(country or region).upper()))
    device = context.get("device")
    if isinstance(device, dict) and device.get("token"):
        found.append(customers.normalize_identity("device_token", device["token"]))
    external = context.get("externalIds") or []
    if not isinstance(external, list):
        raise InvalidEvent("'context.externalIds' must be a list", details={"field": "context.externalIds"})
    for item in external[:20]:
        if not isinstance(item, dict) or "id" not in item or "type" not in item:
            raise InvalidEvent(
                "each of 'context.externalIds' needs an 'id' and a 'type'",
                details={"field": "context.externalIds"},
            )
        kind, value = customers.normalize_identity(str(item["type"]), item["id"], region=region)
        if len(kind) > MAX_IDENTITY_KIND:
            raise InvalidEvent(
                f"an identity type in 'context.externalIds' is longer than {MAX_IDENTITY_KIND} characters",
                details={"field": "context.externalIds"},
            )
        found.append((kind, value))
    return found


def parse(
    message: Any, *, call_type: str | None, received_at: datetime, sent_at: Any = None,
    batch_context: dict[str, Any] | None = None, max_bytes: int = 32 * 1024, region: str = "ES",
    raw_size: int | None = None, currency: str = "EUR",
) -> ParsedEvent:
    """One tracking call to a :class:`ParsedEvent`; raises a TratoError saying what is wrong."""
    if not isinstance(message, dict):
        raise InvalidEvent("each event must be a JSON object")
    try:
        encoded = orjson.dumps(message)
    except TypeError:
        raise InvalidEvent("the event must be plain JSON; numbers must fit in 64 bits") from None
    size = raw_size if raw_size is not None else len(encoded)
    if size > max_bytes:
        raise EventTooLarge(
            f"event is {size} bytes; the limit is {max_bytes} bytes (32 KB)",
            details={"size": size, "limit": max_bytes},
        )
    # PostgreSQL cannot store NUL in text or JSONB; refuse it on every database alike.
    if (b"\\u0000" in encoded and _has_nul(message)) or (batch_context and _has_nul(batch_context)):
        raise InvalidEvent("text in an event must not contain NUL (\\u0000) characters")
    kind = call_type or message.get("type")
    if kind not in CALL_TYPES:
        raise InvalidEvent(
            f"'type' must be one of {', '.join(CALL_TYPES)}, not {kind!r}", details={"field": "type"}
        )
    user_id = _id(message, "userId")
    anonymous_id = _id(message, "anonymousId")
    previous_id = _id(message, "previousId") if kind == "alias" else None
    if kind == "alias":
        if not user_id or not previous_id:
            raise InvalidEvent("an alias call needs both 'userId' and 'previousId'", details={"field": "previousId"})
    elif not user_id and not anonymous_id:
        raise InvalidEvent("every call needs a 'userId' or an 'anonymousId'", details={"field": "userId"})

    context = {**(batch_context or {}), **_object(message, "context")}
    properties = _object(message, "properties")
    traits = _object(message, "traits") if kind in ("identify", "group") else {}
    context_traits = context.get("traits") or {}
    if not isinstance(context_traits, dict):
        raise InvalidEvent("'context.traits' must be a JSON object", details={"field": "context.traits"})
    person_traits = {**context_traits, **traits} if kind != "group" else dict(context_traits)
    customers.check_traits(person_traits)

    name: str | None = None
    if kind == "track":
        name = _short_text(message.get("event"), "event")
        if not name:
            raise InvalidEvent("a track call needs an 'event' name", details={"field": "event"})
        if name.lower() in PURCHASE_EVENTS:
            kind_stored = "purchase"
        else:
            kind_stored = "track"
    else:
        kind_stored = kind
        if kind in ("page", "screen"):
            name = _short_text(message.get("name") or properties.get("name"), "name")
        elif kind == "group":
            name = _id(message, "groupId")
            if name and len(name) > MAX_NAME:
                raise InvalidEvent(f"'groupId' is longer than {MAX_NAME} characters", details={"field": "groupId"})
    channel = _short_text(
        properties.get("channel") or context.get("channel")
        or {"page": "web", "screen": "app"}.get(kind) or _library_channel(message.get("channel")),
        "channel", MAX_CHANNEL,
    )
    department = _short_text(
        properties.get("department") or context.get("department"), "department", MAX_DEPARTMENT
    )
    message_id = _id(message, "messageId") or f"trato-{uuid.uuid4()}"
    if len(message_id) > 128:
        raise InvalidEvent("'messageId' is longer than 128 characters", details={"field": "messageId"})
    if kind == "group":
        properties = {**properties, "traits": traits} if traits else properties
    revenue_cents = _revenue_cents(kind_stored, properties)
    return ParsedEvent(
        type=kind,
        kind=kind_stored,
        message_id=message_id,
        occurred_at=_occurred_at(message, received_at, sent_at),
        identities=_identities(message, user_id, anonymous_id, person_traits, context, region),
        traits=person_traits,
        name=name,
        channel=channel.lower() if channel else None,
        department=department.lower() if department else None,
        properties=properties,
        context={k: v for k, v in context.items() if k != "traits"},
        revenue_cents=revenue_cents,
        currency=_currency(properties, currency) if revenue_cents is not None else None,
        previous_id=previous_id,
    )


def rejection(index: int, message: Any, error: TratoError) -> dict[str, Any]:
    message_id = message.get("messageId") if isinstance(message, dict) else None
    return {"index": index, "messageId": message_id, "code": error.code, "message": error.message}
