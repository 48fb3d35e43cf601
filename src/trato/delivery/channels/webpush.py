"""Web Push: notifications to browsers, straight to the push service each browser chose (RFC 8030),
encrypted for the subscription (RFC 8291, ``aes128gcm``) and signed with the application server's
VAPID key (RFC 8292) so the push service knows who sends.

The push service answers 201 with the message's ``Location``; 404/410 mean the subscription is
gone (the registration is removed and the message fails for good); 400/413 are final; 429 and
5xx are retried after ``Retry-After``. Endpoints come from browsers, so only https endpoints on
public addresses are called (``allow_private`` lifts this for tests and private push services).
"""

from __future__ import annotations

import base64
import re
import time
from typing import ClassVar, Literal
from urllib.parse import parse_qs, urlsplit

import http_ece
import httpx
import orjson
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator

from trato.core.errors import ConfigurationError
from trato.core.outbound import UnsafeURL, check_url
from trato.delivery import push_devices
from trato.delivery.channels.base import ChannelAdapter, CheckResult, Limits, OutgoingMessage, ProviderResult
from trato.delivery.channels.http import PooledClient, failure, refusal
from trato.delivery.channels.push_notification import Notification, find_target

log = structlog.get_logger(__name__)

# A push message is at most 4096 bytes once encrypted: 86 bytes of header, 16 of tag, 1 delimiter.
MAX_PLAINTEXT = 4096 - 86 - 16 - 1
VAPID_LIFETIME = 12 * 3600  # RFC 8292: at most 24 hours
_TOPIC_RE = re.compile(r"[^A-Za-z0-9_-]")


class WebPushSettings(BaseModel):
    vapid_private_key: SecretStr = Field(description="the application server's P-256 private key "
                                                     "(raw 32 bytes base64url, or DER/PEM)")
    subject: str = Field(description="a contact for the push services: mailto:ops@example.com or an https URL")
    ttl: int = Field(86400, ge=0, le=2419200, description="seconds a push service keeps an undelivered message")
    urgency: Literal["very-low", "low", "normal", "high"] = "normal"
    # Transactional messages ask for high urgency: a one-time code should wake the phone.
    transactional_urgency: Literal["very-low", "low", "normal", "high"] = "high"
    # Off by default: two orders' "shipped" messages would otherwise replace each other offline.
    topic_per_communication: bool = Field(False, description="a newer message of one communication replaces "
                                                             "the one still waiting (Topic header)")
    default_url: str = Field("", description="where a click goes when the message has no deep link")
    icon: str = Field("", description="the notification's icon URL")
    allow_private: bool = Field(False, description="allow endpoints on loopback/private addresses (tests only)")
    timeout: float = Field(10.0, gt=0, le=120)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        if not (value.startswith("mailto:") and "@" in value) and not value.startswith("https://"):
            raise ValueError("the VAPID subject must be mailto:someone@example.com or an https URL")
        return value


def _vapid(settings: WebPushSettings) -> Vapid02:
    key = settings.vapid_private_key.get_secret_value().strip()
    try:
        if key.startswith("-----BEGIN"):
            return Vapid02.from_pem(key.encode())
        return Vapid02.from_string(key)
    except (VapidException, ValueError, TypeError) as exc:
        raise ConfigurationError("vapid_private_key", f"the VAPID private key cannot be read: {type(exc).__name__}") \
            from None


def endpoint_problem(url: str, *, allow_private: bool) -> str | None:
    """Why a browser-given endpoint must not be called (scheme, credentials, a non-public address:
    core.outbound's checks), or None. A host that does not resolve is not refused here: the
    connection then fails and is classified as unreachable, to be tried again."""
    try:
        check_url(url, allow_private=allow_private)
    except UnsafeURL as exc:
        if isinstance(exc.details, dict) and exc.details.get("reason") == "resolve":
            return None
        return exc.message
    return None


class WebPush(ChannelAdapter):
    """Push to browsers with VAPID; one adapter per application server key."""

    name: ClassVar[str] = "webpush"
    channels: ClassVar[tuple[str, ...]] = ("push",)
    platforms: ClassVar[tuple[str, ...]] = ("webpush",)
    capabilities: ClassVar[frozenset[str]] = frozenset({"encrypted", "expiry", "collapse"})
    limits: ClassVar[Limits] = Limits(max_connections=20, max_body_bytes=4096)
    settings_model: ClassVar[type[BaseModel]] = WebPushSettings
    url_schemes: ClassVar[tuple[str, ...]] = ("webpush",)

    def __init__(self, settings: BaseModel | None = None, *, instance: str | None = None) -> None:
        if settings is None:
            raise ConfigurationError("webpush", "Web Push needs vapid_private_key and subject "
                                                "(webpush://?vapid_private_key=…&subject=mailto:…)")
        super().__init__(settings, instance=instance)
        assert isinstance(self.settings, WebPushSettings)
        self._vapid = _vapid(self.settings)
        self._http = PooledClient(timeout=httpx.Timeout(self.settings.timeout, connect=min(5.0, self.settings.timeout)),
                                  max_connections=self.limits.max_connections or 20)

    @classmethod
    def settings_from_url(cls, url: str) -> BaseModel:
        """``webpush://?vapid_private_key=KEY&subject=mailto:ops@example.com&ttl=3600&urgency=normal``"""
        parts = urlsplit(url)
        if parts.scheme not in cls.url_schemes:
            raise ConfigurationError("webpush", f"a Web Push URL starts with webpush://, not {parts.scheme}://")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        for flag in ("allow_private", "topic_per_communication"):
            if flag in query:
                query[flag] = query[flag].lower() in ("1", "true", "yes")  # type: ignore[assignment]
        try:
            return WebPushSettings(**query)  # type: ignore[arg-type]
        except ValidationError as exc:
            wrong = ", ".join(str(e["loc"][0]) for e in exc.errors() if e["loc"])
            raise ConfigurationError("webpush", f"the Web Push URL has missing or wrong settings: {wrong}") from None

    @property
    def public_key(self) -> str:
        """The application server key browsers pass to ``pushManager.subscribe`` (base64url)."""
        raw = self._vapid.public_key.public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def check(self) -> CheckResult:
        """Nothing to call without a browser: the key is read and can sign (a push service checks the rest)."""
        try:
            self._authorization("https://push.example")
        except (VapidException, ValueError) as exc:
            return CheckResult(False, f"the VAPID key cannot sign: {exc}")
        return CheckResult(True, f"VAPID key ready; browsers subscribe with applicationServerKey {self.public_key}")

    def _authorization(self, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        assert isinstance(self.settings, WebPushSettings)
        claims = {"aud": audience, "exp": int(time.time()) + VAPID_LIFETIME, "sub": self.settings.subject}
        return self._vapid.sign(claims)["Authorization"]

    def payload(self, message: OutgoingMessage) -> bytes:
        """The notification as the service worker (or a browser's declarative Web Push) reads it."""
        assert isinstance(self.settings, WebPushSettings)
        note = Notification.of(message)
        navigate = note.deep_link or self.settings.default_url or None
        notification = {"title": note.title, "body": note.body, "lang": message.language, "navigate": navigate,
                        "icon": self.settings.icon or None, "image": note.image}
        body: dict[str, object] = {"notification": {k: v for k, v in notification.items() if v},
                                   "message_id": message.message_id}
        if navigate:  # the declarative Web Push magic number: the browser shows it without a worker
            body = {"web_push": 8030, **body}
        return orjson.dumps(body)

    def _headers(self, message: OutgoingMessage, endpoint: str) -> dict[str, str]:
        assert isinstance(self.settings, WebPushSettings)
        headers = {
            "Authorization": self._authorization(endpoint),
            "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
            "TTL": str(self.settings.ttl),
            "Urgency": self.settings.transactional_urgency if message.transactional else self.settings.urgency,
        }
        topic = _TOPIC_RE.sub("-", str(message.metadata.get("communication", "")))[:32]
        if self.settings.topic_per_communication and topic:
            headers["Topic"] = topic
        return headers

    def send(self, message: OutgoingMessage) -> ProviderResult:
        assert isinstance(self.settings, WebPushSettings)
        found = find_target(message, platform="webpush", bare_tokens=False)
        if isinstance(found, ProviderResult):
            return found
        problem = endpoint_problem(found.token, allow_private=self.settings.allow_private)
        if problem is not None:
            return ProviderResult.refused(f"not sent: {problem}", permanent=True)
        plaintext = self.payload(message)
        if len(plaintext) > MAX_PLAINTEXT:
            return ProviderResult.refused(f"the notification is {len(plaintext)} bytes; Web Push carries "
                                          f"{MAX_PLAINTEXT}", permanent=True)
        try:
            body = encrypt(plaintext, p256dh=found.p256dh or "", auth=found.auth or "")
        except ValueError as exc:
            return ProviderResult.refused(f"the subscription's keys are unusable: {exc}", permanent=True)
        try:
            response = self._http.get().post(found.token, content=body, headers=self._headers(message, found.token))
        except httpx.HTTPError as exc:
            return failure(exc, "the push service")
        if response.status_code in (200, 201, 202):
            location = response.headers.get("location", "")
            return ProviderResult.accepted((location.rstrip("/").rpartition("/")[2] or location or
                                            f"webpush:{message.message_id}")[:255])
        detail = response.text[:300] or response.reason_phrase
        if response.status_code in (404, 410) and found.registration_id:
            push_devices.forget(registration_id=found.registration_id, provider=self.instance,
                                reason=f"push service answered {response.status_code}")
            return ProviderResult.refused(f"HTTP {response.status_code}: the subscription expired or was "
                                          "unsubscribed; its registration was removed", permanent=True)
        return refusal(response, detail)

    def close(self) -> None:
        self._http.close()


def _b64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def encrypt(plaintext: bytes, *, p256dh: str, auth: str) -> bytes:
    """RFC 8291: the plaintext encrypted for the subscription, with a fresh key pair and salt."""
    receiver = _b64(p256dh)
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), receiver)  # ValueError if not a P-256 point
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    return http_ece.encrypt(plaintext, private_key=ephemeral, dh=receiver, auth_secret=_b64(auth),
                            version="aes128gcm")
