"""Push registrations: the devices (FCM tokens) and browsers (Web Push subscriptions) that apps
register for a customer, and how delivery finds the one to notify.

A registration is linked to its customer by an identity of kind ``device_token`` whose value is
the registration's id (``pdev_…``): the policy then sees the customer as reachable on push, a
merge moves the device with the profile and an erasure drops the link. A token registered again
by another customer (a shared tablet, a new sign-in) moves to that customer: the device belongs
to whoever used it last. A push service that answers "gone" (Web Push 404/410, FCM
UNREGISTERED) removes the registration (:func:`forget`), so nobody sends to it again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trato.core import audit
from trato.core.clock import utcnow
from trato.core.db import unit_of_work
from trato.core.ids import new_id
from trato.customers import service as customers
from trato.delivery.errors import InvalidPushRegistration, InvalidSend, PushRegistrationNotFound
from trato.delivery.models import PUSH_PLATFORMS, PushRegistration

log = structlog.get_logger(__name__)

IDENTITY_KIND = "device_token"
PREFIX = "pdev_"
MAX_TOKEN = 4096
MAX_ENDPOINT = 2048


@dataclass(frozen=True)
class PushTarget:
    """Where one push goes: a registration (platform, token or endpoint and keys) or, for a
    device token that came with tracked events rather than a registration, the bare token."""

    platform: str | None  # None: a bare device token, its platform unknown
    token: str
    p256dh: str | None = None
    auth: str | None = None
    registration_id: str | None = None

    def subscription(self) -> dict[str, Any]:
        """The Web Push subscription as the browser's ``PushSubscription.toJSON()`` gives it."""
        return {"endpoint": self.token, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


def _b64url(value: str, *, name: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidPushRegistration(f"keys.{name} is not base64url", details={"field": f"keys.{name}"}) from None


def _check_subscription(subscription: dict[str, Any]) -> tuple[str, str, str]:
    endpoint = subscription.get("endpoint")
    keys = subscription.get("keys") or {}
    if not isinstance(endpoint, str) or not isinstance(keys, dict):
        raise InvalidPushRegistration("a Web Push subscription is {endpoint, keys: {p256dh, auth}}, as the "
                                      "browser's PushSubscription.toJSON() gives it")
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname or len(endpoint) > MAX_ENDPOINT:
        raise InvalidPushRegistration("the subscription's endpoint must be the push service's https URL",
                                      details={"field": "endpoint"})
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str) or not isinstance(auth, str):
        raise InvalidPushRegistration("the subscription needs keys.p256dh and keys.auth", details={"field": "keys"})
    point = _b64url(p256dh, name="p256dh")
    if len(point) != 65 or point[0] != 4:
        raise InvalidPushRegistration("keys.p256dh must be an uncompressed P-256 public key (65 bytes)",
                                      details={"field": "keys.p256dh"})
    try:
        from cryptography.hazmat.primitives.asymmetric import ec

        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise InvalidPushRegistration("keys.p256dh is not a point on P-256", details={"field": "keys.p256dh"}) from None
    if len(_b64url(auth, name="auth")) != 16:
        raise InvalidPushRegistration("keys.auth must be the 16-byte authentication secret",
                                      details={"field": "keys.auth"})
    return endpoint.strip(), p256dh.rstrip("="), auth.rstrip("=")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def register(session: Session, *, customer_id: str, platform: str, actor: str, token: str | None = None,
             subscription: dict[str, Any] | None = None, label: str | None = None) -> PushRegistration:
    """Register a device (``fcm`` + token) or a browser (``webpush`` + subscription) for a customer.

    Registering the same token again refreshes it (keys, label); from another customer it moves."""
    customer = customers.get_customer(session, customer_id)
    if platform not in PUSH_PLATFORMS:
        raise InvalidPushRegistration(f"platform must be one of {', '.join(PUSH_PLATFORMS)}",
                                      details={"field": "platform"})
    p256dh = auth = None
    if platform == "webpush":
        if subscription is None or token is not None:
            raise InvalidPushRegistration("a webpush registration gives the browser's subscription, not a token",
                                          details={"field": "subscription"})
        token, p256dh, auth = _check_subscription(subscription)
    else:
        if token is None or subscription is not None:
            raise InvalidPushRegistration("an fcm registration gives the app's registration token",
                                          details={"field": "token"})
        token = token.strip()
        if not token or len(token) > MAX_TOKEN or any(c.isspace() or not c.isprintable() for c in token):
            raise InvalidPushRegistration("the FCM registration token is empty, too long or has spaces",
                                          details={"field": "token"})
    now = utcnow()
    found = session.scalar(select(PushRegistration).where(PushRegistration.platform == platform,
                                                          PushRegistration.token_sha256 == _digest(token)))
    if found is None:
        candidate = PushRegistration(id=new_id("pdev"), customer_id=customer.id, platform=platform, token=token,
                                     token_sha256=_digest(token), created_by=actor, created_at=now, updated_at=now)
        try:
            with session.begin_nested():  # the app may register the same token twice at once
                session.add(candidate)
            found = candidate
        except IntegrityError:
            found = session.scalar(select(PushRegistration).where(PushRegistration.platform == platform,
                                                                  PushRegistration.token_sha256 == _digest(token)))
            if found is None:
                raise
    if _owner(session, found.id) != customer.id:
        _unlink(session, found.id, actor)
        found.customer_id = customer.id
    found.p256dh, found.auth, found.label, found.updated_at = p256dh, auth, label, now
    session.flush()
    customers.add_identity(session, customer_id=customer.id, kind=IDENTITY_KIND, value=found.id, actor=actor)
    audit.record(session, actor=actor, action="delivery.push.register", object_type="customer",
                 object_id=customer.id, registration_id=found.id, platform=platform)
    return found


def _owner(session: Session, registration_id: str) -> str | None:
    return customers.owner_of(session, kind=IDENTITY_KIND, value=registration_id)


def _unlink(session: Session, registration_id: str, actor: str) -> str | None:
    return customers.remove_identity(session, kind=IDENTITY_KIND, value=registration_id, actor=actor)


def registrations_of(session: Session, customer_id: str) -> list[PushRegistration]:
    """The customer's registered devices and browsers, newest first (merged profiles included)."""
    customer = customers.get_customer(session, customer_id)
    ids = [i.value for i in customers.identities_of(session, customer.id) if i.kind == IDENTITY_KIND]
    if not ids:
        return []
    return list(session.scalars(select(PushRegistration).where(PushRegistration.id.in_(ids))
                                .order_by(PushRegistration.updated_at.desc(), PushRegistration.id.desc())))


def unregister(session: Session, *, customer_id: str, registration_id: str, actor: str) -> None:
    """Remove one of the customer's registrations (the app signed out, the user revoked push)."""
    customer = customers.get_customer(session, customer_id)
    found = session.get(PushRegistration, registration_id)
    if found is None or _owner(session, registration_id) != customer.id:
        raise PushRegistrationNotFound(f"customer {customer.id} has no push registration {registration_id}",
                                       details={"registration_id": registration_id})
    _unlink(session, found.id, actor)
    session.delete(found)
    session.flush()
    audit.record(session, actor=actor, action="delivery.push.unregister", object_type="customer",
                 object_id=customer.id, registration_id=registration_id)


def recipient_for(session: Session, *, customer_id: str, platforms: Iterable[str] | None) -> str:
    """The push recipient of a customer: their newest registration on one of ``platforms`` (None:
    any), else a bare device token from their tracked events when the adapter takes those."""
    accepted = set(platforms) if platforms is not None else None
    for registration in registrations_of(session, customer_id):
        if accepted is None or registration.platform in accepted:
            return registration.id
    if accepted is None or "token" in accepted:
        for identity in reversed(customers.identities_of(session, customer_id)):
            if identity.kind == IDENTITY_KIND and not identity.value.startswith(PREFIX):
                return identity.value
    raise InvalidSend("the customer has no registered device or browser to send push to", code="no_address",
                      details={"channel": "push", "platforms": sorted(accepted) if accepted else None})


def target(recipient: str) -> PushTarget | None:
    """What a push recipient names; None when its registration was removed since the send."""
    if not recipient.startswith(PREFIX):
        return PushTarget(None, recipient)
    with unit_of_work() as session:
        found = session.get(PushRegistration, recipient)
        if found is None:
            return None
        return PushTarget(found.platform, found.token, found.p256dh, found.auth, found.id)


def forget(*, registration_id: str, provider: str, reason: str) -> bool:
    """The push service said the device or browser is gone: remove its registration (own unit of
    work, called by adapters). True when one was removed."""
    with unit_of_work() as session:
        found = session.get(PushRegistration, registration_id, with_for_update=True)
        if found is None:
            return False
        owner = _unlink(session, found.id, f"provider:{provider}")
        session.delete(found)
        audit.record(session, actor=f"provider:{provider}", action="delivery.push.expired", object_type="customer",
                     object_id=owner or found.customer_id, registration_id=found.id, platform=found.platform,
                     reason=reason[:200])
    log.info("push registration removed", registration_id=registration_id, provider=provider, reason=reason[:200])
    return True


def erase_customer(session: Session, *, customer_id: str, actor: str) -> int:
    """A privacy erasure: the person's devices and browsers are forgotten (tokens and endpoints
    identify a device). Returns how many registrations were removed."""
    profiles = customers.profiles_of(session, customer_id)
    found = list(session.scalars(select(PushRegistration).where(PushRegistration.customer_id.in_(profiles))))
    for registration in found:
        _unlink(session, registration.id, actor)
        session.delete(registration)
    session.flush()
    return len(found)
